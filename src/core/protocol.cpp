// Encoder and decoder of the replication wire protocol: docs/protocol.md is the specification.
// The decoder never reads outside [data, data + size): every read goes through reader::need().
#include "core/protocol.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

namespace meridian::protocol {

namespace {

constexpr std::size_t sig_size = signing::signature_size;
// Smallest possible messages: header, region name of one byte, fixed fields, signature.
constexpr std::size_t min_transaction_size = header_size + 2 + 4 + 8 + 8 + 8 + 4 + sig_size;  // 104
constexpr std::size_t min_heartbeat_size = header_size + 2 + 8 + 8 + sig_size;                 // 88
// Smallest encodings, used to bound counts before reserving memory for them.
constexpr std::size_t min_change_size = 1 + 2 + 2 + 16;  // op, schema, table, key (a delete)
constexpr std::size_t min_column_size = 2 + 1 + 1;       // name, tag, flags (a NULL)

[[noreturn]] void fail(reason r, std::size_t offset, std::string detail) { throw protocol_error(r, offset, std::move(detail)); }

void put_u8(std::vector<std::uint8_t> &b, std::uint8_t v) { b.push_back(v); }
void put_le(std::vector<std::uint8_t> &b, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void patch_le(std::vector<std::uint8_t> &b, std::size_t at, std::uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++)
        b[at + i] = static_cast<std::uint8_t>(v >> (8 * i));
}

std::uint32_t get_be16(const std::uint8_t *p) { return (std::uint32_t(p[0]) << 8) | p[1]; }

// Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF.
bool valid_utf8(const std::uint8_t *s, std::size_t n) {
    std::size_t i = 0;
    while (i < n) {
        std::uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        std::size_t len;
        std::uint8_t lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            len = 2;
        else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F;
        } else
            return false;
        if (n - i < len)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (std::size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF)
                return false;
        i += len;
    }
    return true;
}

// Empty string when the name is acceptable, else why not.
std::string name_problem(const std::uint8_t *s, std::size_t n) {
    if (n == 0)
        return "empty name";
    if (n > max_name_size)
        return "name of " + std::to_string(n) + " bytes, the limit is 255";
    if (std::memchr(s, 0, n) != nullptr)
        return "name contains a NUL byte";
    if (!valid_utf8(s, n))
        return "name is not valid UTF-8";
    return {};
}

// Empty string when len bytes at p are a well-formed value of the tag's type, else why not.
std::string value_problem(type_tag t, const std::uint8_t *p, std::size_t len) {
    auto fixed = [&](std::size_t want) -> std::string {
        if (len == want)
            return {};
        return "value of " + std::to_string(len) + " bytes for a type of " + std::to_string(want);
    };
    switch (t) {
    case type_tag::boolean:
        if (len != 1)
            return fixed(1);
        return p[0] <= 1 ? std::string() : std::string("boolean value other than 0 or 1");
    case type_tag::int2:
        return fixed(2);
    case type_tag::int4:
    case type_tag::float4:
    case type_tag::date:
        return fixed(4);
    case type_tag::int8:
    case type_tag::float8:
    case type_tag::timestamptz:
    case type_tag::timestamp:
        return fixed(8);
    case type_tag::uuid:
        return fixed(16);
    case type_tag::numeric: {
        // int16 ndigits, weight, sign, dscale, then ndigits int16 digits (all big-endian).
        if (len < 8)
            return "numeric value shorter than its 8-byte header";
        std::uint32_t ndigits = get_be16(p);
        if (ndigits > 0x7FFF || len != 8 + 2 * std::size_t(ndigits))
            return "numeric value whose length disagrees with its digit count";
        return {};
    }
    case type_tag::jsonb:
        if (len < 1 || p[0] != 1)
            return "jsonb value without the version byte 1";
        return {};
    case type_tag::vector: {
        if (len < 4)
            return "vector value shorter than its 4-byte header";
        std::size_t dim = get_be16(p);
        if (dim < 1 || dim > max_vector_dim)
            return "vector with " + std::to_string(dim) + " dimensions";
        if (get_be16(p + 2) != 0)
            return "vector whose unused field is not 0";
        if (len != 4 + 4 * dim)
            return "vector value of " + std::to_string(len) + " bytes for " + std::to_string(dim) + " dimensions";
        return {};
    }
    case type_tag::named:
    case type_tag::text:
    case type_tag::varchar:
    case type_tag::bytea:
    case type_tag::json:
        return {};
    }
    return "unknown type tag";
}

// True when the names (offset, length pairs into buf) are pairwise different.
bool names_distinct(const std::uint8_t *buf, std::vector<std::pair<std::size_t, std::size_t>> names) {
    auto view = [&](const std::pair<std::size_t, std::size_t> &n) {
        return std::string_view(reinterpret_cast<const char *>(buf + n.first), n.second);
    };
    std::sort(names.begin(), names.end(), [&](const auto &a, const auto &b) { return view(a) < view(b); });
    for (std::size_t i = 1; i < names.size(); i++)
        if (view(names[i - 1]) == view(names[i]))
            return false;
    return true;
}

// Bounds-checked little-endian reads over [pos, end).
class reader {
public:
    reader(const std::uint8_t *data, std::size_t pos, std::size_t end) : p_(data), pos_(pos), end_(end) {}
    std::size_t pos() const { return pos_; }
    std::size_t left() const { return end_ - pos_; }
    void need(std::size_t n, const char *what) const {
        if (left() < n)
            fail(reason::truncated, pos_,
                 std::string(what) + " needs " + std::to_string(n) + " bytes, " + std::to_string(left()) + " are left");
    }
    std::uint64_t le(int bytes, const char *what) {
        need(std::size_t(bytes), what);
        std::uint64_t v = 0;
        for (int i = 0; i < bytes; i++)
            v |= std::uint64_t(p_[pos_ + i]) << (8 * i);
        pos_ += std::size_t(bytes);
        return v;
    }
    std::uint8_t u8(const char *what) { return static_cast<std::uint8_t>(le(1, what)); }
    const std::uint8_t *bytes(std::size_t n, const char *what) {
        need(n, what);
        const std::uint8_t *q = p_ + pos_;
        pos_ += n;
        return q;
    }
    std::string name(const char *what) {
        std::size_t at = pos_;
        std::size_t n = u8(what);
        const std::uint8_t *s = bytes(n, what);
        std::string problem = name_problem(s, n);
        if (!problem.empty())
            fail(reason::bad_name, at, std::string(what) + ": " + problem);
        return std::string(reinterpret_cast<const char *>(s), n);
    }

private:
    const std::uint8_t *p_;
    std::size_t pos_;
    std::size_t end_;
};

std::size_t min_size(kind k) { return k == kind::transaction ? min_transaction_size : min_heartbeat_size; }

void write_name(std::vector<std::uint8_t> &b, std::string_view s, const char *what) {
    std::string problem = name_problem(reinterpret_cast<const std::uint8_t *>(s.data()), s.size());
    if (!problem.empty())
        fail(reason::bad_name, b.size(), std::string(what) + ": " + problem);
    put_u8(b, static_cast<std::uint8_t>(s.size()));
    b.insert(b.end(), s.begin(), s.end());
}

void check_lsns(std::uint64_t commit_lsn, std::uint64_t end_lsn, std::size_t at) {
    if (commit_lsn == 0)
        fail(reason::bad_field, at, "commit LSN is 0 (InvalidXLogRecPtr)");
    if (end_lsn <= commit_lsn)
        fail(reason::bad_field, at, "end LSN is not after the commit LSN");
}

// A transaction's fixed fields, before its change count.
transaction read_transaction_fields(reader &r) {
    transaction t;
    t.region = r.name("region name");
    t.xid = static_cast<std::uint32_t>(r.le(4, "xid"));
    std::size_t lsn_at = r.pos();
    t.commit_lsn = r.le(8, "commit LSN");
    t.end_lsn = r.le(8, "end LSN");
    check_lsns(t.commit_lsn, t.end_lsn, lsn_at);
    t.commit_time = static_cast<std::int64_t>(r.le(8, "commit timestamp"));
    return t;
}

transaction decode_transaction(const std::uint8_t *data, std::size_t length) {
    reader r(data, header_size, length - sig_size);
    transaction t = read_transaction_fields(r);
    std::size_t count_at = r.pos();
    std::uint32_t count = static_cast<std::uint32_t>(r.le(4, "change count"));
    if (count > r.left() / min_change_size)
        fail(reason::truncated, count_at, std::to_string(count) + " changes cannot fit in " + std::to_string(r.left()) + " bytes");
    t.changes.reserve(count);
    for (std::uint32_t i = 0; i < count; i++) {
        row_change c;
        std::size_t op_at = r.pos();
        std::uint8_t op = r.u8("operation");
        if (op != 'I' && op != 'U' && op != 'D')
            fail(reason::unknown_operation, op_at, "operation byte " + std::to_string(op));
        c.op = static_cast<operation>(op);
        c.schema = r.name("schema name");
        c.table = r.name("table name");
        std::memcpy(c.key.data(), r.bytes(16, "key"), 16);
        if (c.op != operation::remove) {
            std::size_t ncol_at = r.pos();
            std::uint32_t ncol = static_cast<std::uint32_t>(r.le(2, "column count"));
            if (ncol > max_columns)
                fail(reason::bad_field, ncol_at, std::to_string(ncol) + " columns, the limit is 1600");
            if (ncol > r.left() / min_column_size)
                fail(reason::truncated, ncol_at, std::to_string(ncol) + " columns cannot fit in " + std::to_string(r.left()) + " bytes");
            c.columns.reserve(ncol);
            std::vector<std::pair<std::size_t, std::size_t>> names;
            names.reserve(ncol);
            for (std::uint32_t k = 0; k < ncol; k++) {
                column col;
                names.emplace_back(r.pos() + 1, 0);
                col.name = r.name("column name");
                names.back().second = col.name.size();
                std::size_t tag_at = r.pos();
                std::uint8_t tag = r.u8("type tag");
                if (tag > max_type_tag)
                    fail(reason::unknown_type, tag_at, "type tag " + std::to_string(tag));
                col.type = static_cast<type_tag>(tag);
                if (col.type == type_tag::named)
                    col.type_name = r.name("type name");
                std::size_t flags_at = r.pos();
                std::uint8_t flags = r.u8("column flags");
                if (flags > 2 || (flags == 2 && c.op != operation::update))
                    fail(reason::bad_flags, flags_at, "column flags " + std::to_string(flags));
                col.state = static_cast<value_state>(flags);
                if (col.state == value_state::present) {
                    std::size_t len_at = r.pos();
                    std::size_t len = static_cast<std::size_t>(r.le(4, "value length"));
                    const std::uint8_t *v = r.bytes(len, "value");
                    std::string problem = value_problem(col.type, v, len);
                    if (!problem.empty())
                        fail(reason::bad_value, len_at, "column \"" + col.name + "\": " + problem);
                    col.value.assign(v, v + len);
                }
                c.columns.push_back(std::move(col));
            }
            if (!names_distinct(data, names))
                fail(reason::duplicate_column, ncol_at, "a column name appears twice in one row");
        }
        t.changes.push_back(std::move(c));
    }
    if (r.left() != 0)
        fail(reason::trailing_bytes, r.pos(), std::to_string(r.left()) + " bytes after the last change");
    return t;
}

heartbeat decode_heartbeat(const std::uint8_t *data, std::size_t length) {
    reader r(data, header_size, length - sig_size);
    heartbeat h;
    h.region = r.name("region name");
    std::size_t lsn_at = r.pos();
    h.wal_lsn = r.le(8, "WAL position");
    if (h.wal_lsn == 0)
        fail(reason::bad_field, lsn_at, "WAL position is 0 (InvalidXLogRecPtr)");
    h.time = static_cast<std::int64_t>(r.le(8, "timestamp"));
    if (r.left() != 0)
        fail(reason::trailing_bytes, r.pos(), std::to_string(r.left()) + " bytes after the timestamp");
    return h;
}

// Appends the length, then the signature over everything before it.
std::vector<std::uint8_t> seal(std::vector<std::uint8_t> b, const signing::secret_key &key) {
    if (b.size() + sig_size > max_message_size)
        fail(reason::too_large, b.size(), "message of " + std::to_string(b.size() + sig_size) + " bytes");
    patch_le(b, 2, b.size() + sig_size, 4);
    std::size_t n = b.size();
    b.resize(n + sig_size);
    key.sign(b.data(), n, b.data() + n);
    return b;
}

void start(std::vector<std::uint8_t> &b, kind k) {
    put_u8(b, format_version);
    put_u8(b, static_cast<std::uint8_t>(k));
    put_le(b, 0, 4);  // length, patched by seal()
}

}  // namespace

const char *to_string(reason r) noexcept {
    switch (r) {
    case reason::truncated: return "truncated";
    case reason::bad_length: return "bad length";
    case reason::bad_version: return "bad version";
    case reason::unknown_kind: return "unknown message kind";
    case reason::unknown_operation: return "unknown operation";
    case reason::unknown_type: return "unknown type tag";
    case reason::bad_flags: return "bad column flags";
    case reason::bad_name: return "bad name";
    case reason::bad_value: return "bad value";
    case reason::bad_field: return "bad field";
    case reason::duplicate_column: return "duplicate column";
    case reason::trailing_bytes: return "trailing bytes";
    case reason::bad_signature: return "bad signature";
    case reason::too_large: return "too large";
    case reason::misuse: return "misuse";
    }
    return "unknown";
}

protocol_error::protocol_error(protocol::reason r, std::size_t offset, std::string detail)
    : meridian::error(sqlstate_protocol_violation, std::string("invalid replication message: ") + to_string(r),
                      detail + " (at byte " + std::to_string(offset) + ")"),
      reason_(r), offset_(offset) {}

header read_header(byte_view f) {
    if (f.size == 0 || f.data == nullptr)
        fail(reason::truncated, 0, "empty frame");
    if (f.data[0] != format_version)
        fail(reason::bad_version, 0, "format version " + std::to_string(f.data[0]) + ", expected 1");
    if (f.size < 2)
        fail(reason::truncated, f.size, "frame of " + std::to_string(f.size) + " bytes");
    std::uint8_t k = f.data[1];
    if (k != static_cast<std::uint8_t>(kind::transaction) && k != static_cast<std::uint8_t>(kind::heartbeat))
        fail(reason::unknown_kind, 1, "message kind byte " + std::to_string(k));
    if (f.size < header_size)
        fail(reason::truncated, f.size, "frame of " + std::to_string(f.size) + " bytes");
    header h{f.data[0], static_cast<kind>(k),
             std::uint32_t(f.data[2]) | std::uint32_t(f.data[3]) << 8 | std::uint32_t(f.data[4]) << 16 |
                 std::uint32_t(f.data[5]) << 24};
    if (h.length < min_size(h.kind))
        fail(reason::bad_length, 2, "length field " + std::to_string(h.length) + " is below the minimum of " +
                                        std::to_string(min_size(h.kind)));
    if (h.length > max_message_size)
        fail(reason::bad_length, 2, "length field " + std::to_string(h.length) + " exceeds 1 GiB - 1");
    if (f.size < h.length)
        fail(reason::truncated, f.size,
             "frame of " + std::to_string(f.size) + " bytes, the length field says " + std::to_string(h.length));
    if (f.size > h.length)
        fail(reason::bad_length, h.length,
             "frame of " + std::to_string(f.size) + " bytes, the length field says " + std::to_string(h.length));
    return h;
}

void verify(byte_view f, const signing::public_key &key) {
    header h = read_header(f);
    std::size_t n = h.length - sig_size;
    if (!signing::verify(key, f.data, n, f.data + n))
        fail(reason::bad_signature, n, "the Ed25519 signature does not verify with the region's public key");
}

message decode(byte_view f) {
    header h = read_header(f);
    if (h.kind == kind::transaction)
        return decode_transaction(f.data, h.length);
    return decode_heartbeat(f.data, h.length);
}

transaction peek_transaction(byte_view f) {
    header h = read_header(f);
    if (h.kind != kind::transaction)
        fail(reason::unknown_kind, 1, "not a transaction message");
    reader r(f.data, header_size, h.length - sig_size);
    transaction t = read_transaction_fields(r);
    r.le(4, "change count");
    return t;
}

message open(byte_view f, const signing::public_key &key) {
    verify(f, key);
    return decode(f);
}

// ---- encoder ----

transaction_writer::transaction_writer(std::string_view region, std::uint32_t xid, std::uint64_t commit_lsn,
                                       std::uint64_t end_lsn, std::int64_t commit_time) {
    start(buf_, kind::transaction);
    write_name(buf_, region, "region name");
    put_le(buf_, xid, 4);
    check_lsns(commit_lsn, end_lsn, buf_.size());
    put_le(buf_, commit_lsn, 8);
    put_le(buf_, end_lsn, 8);
    put_le(buf_, static_cast<std::uint64_t>(commit_time), 8);
    put_le(buf_, 0, 4);  // change count, patched by finish()
}

void transaction_writer::need(std::size_t more) {
    if (spent_)
        fail(reason::misuse, buf_.size(), "the transaction writer is already finished");
    if (buf_.size() + more + sig_size > max_message_size)
        fail(reason::too_large, buf_.size(), "the transaction exceeds 1 GiB - 1 bytes");
}

void transaction_writer::close_change() {
    if (column_count_at_ == 0)
        return;
    patch_le(buf_, column_count_at_, columns_, 2);
    if (!names_distinct(buf_.data(), names_))
        fail(reason::duplicate_column, column_count_at_, "a column name appears twice in one row");
    column_count_at_ = 0;
    columns_ = 0;
    names_.clear();
}

void transaction_writer::add_change(operation op, std::string_view schema, std::string_view table, const uuid::bytes &key) {
    guard([&] { add_change_(op, schema, table, key); });
}

void transaction_writer::add_change_(operation op, std::string_view schema, std::string_view table, const uuid::bytes &key) {
    need(min_change_size + schema.size() + table.size() + 2);
    if (op != operation::insert && op != operation::update && op != operation::remove)
        fail(reason::unknown_operation, buf_.size(), "operation byte " + std::to_string(static_cast<int>(op)));
    close_change();
    if (changes_ == UINT32_MAX)
        fail(reason::too_large, buf_.size(), "too many changes");
    put_u8(buf_, static_cast<std::uint8_t>(op));
    write_name(buf_, schema, "schema name");
    write_name(buf_, table, "table name");
    buf_.insert(buf_.end(), key.begin(), key.end());
    op_ = op;
    if (op != operation::remove) {
        column_count_at_ = buf_.size();
        put_le(buf_, 0, 2);
    }
    changes_++;
}

void transaction_writer::add_column(std::string_view name, type_tag type, std::string_view type_name, value_state state,
                                    const std::uint8_t *value, std::size_t len) {
    guard([&] { add_column_(name, type, type_name, state, value, len); });
}

void transaction_writer::add_column_(std::string_view name, type_tag type, std::string_view type_name,
                                     value_state state, const std::uint8_t *value, std::size_t len) {
    need(min_column_size + name.size() + type_name.size() + 5 + len);
    if (column_count_at_ == 0)
        fail(reason::misuse, buf_.size(), "a column outside an insert or update");
    if (columns_ >= max_columns)
        fail(reason::bad_field, buf_.size(), "more than 1600 columns");
    if (static_cast<std::uint8_t>(type) > max_type_tag)
        fail(reason::unknown_type, buf_.size(), "type tag " + std::to_string(static_cast<int>(type)));
    if ((type == type_tag::named) != !type_name.empty())
        fail(reason::misuse, buf_.size(), "a type name goes with the named type tag, and only with it");
    if (static_cast<std::uint8_t>(state) > 2 || (state == value_state::unchanged && op_ != operation::update))
        fail(reason::bad_flags, buf_.size(), "unchanged values exist only in updates");
    if (state != value_state::present && len != 0)
        fail(reason::misuse, buf_.size(), "a NULL or unchanged column carries no value");
    if (state == value_state::present) {
        std::string problem = value_problem(type, value, len);
        if (!problem.empty())
            fail(reason::bad_value, buf_.size(), "column \"" + std::string(name) + "\": " + problem);
    }
    names_.emplace_back(buf_.size() + 1, name.size());
    write_name(buf_, name, "column name");
    put_u8(buf_, static_cast<std::uint8_t>(type));
    if (type == type_tag::named)
        write_name(buf_, type_name, "type name");
    put_u8(buf_, static_cast<std::uint8_t>(state));
    if (state == value_state::present) {
        put_le(buf_, len, 4);
        if (len != 0)
            buf_.insert(buf_.end(), value, value + len);
    }
    columns_++;
}

std::vector<std::uint8_t> transaction_writer::finish(const signing::secret_key &key) {
    guard([&] {
        need(0);
        close_change();
    });
    // The change count is the last fixed field before the changes: at header + region + 28.
    std::size_t count_at = header_size + 1 + buf_[header_size] + 4 + 8 + 8 + 8;
    patch_le(buf_, count_at, changes_, 4);
    spent_ = true;
    return seal(std::move(buf_), key);
}

std::vector<std::uint8_t> encode(const transaction &t, const signing::secret_key &key) {
    transaction_writer w(t.region, t.xid, t.commit_lsn, t.end_lsn, t.commit_time);
    for (const row_change &c : t.changes) {
        w.add_change(c.op, c.schema, c.table, c.key);
        if (c.op == operation::remove && !c.columns.empty())
            fail(reason::misuse, w.size(), "a delete carries no columns");
        for (const column &col : c.columns)
            w.add_column(col.name, col.type, col.type_name, col.state, col.value.data(), col.value.size());
    }
    return w.finish(key);
}

std::vector<std::uint8_t> encode(const heartbeat &h, const signing::secret_key &key) {
    std::vector<std::uint8_t> b;
    start(b, kind::heartbeat);
    write_name(b, h.region, "region name");
    if (h.wal_lsn == 0)
        fail(reason::bad_field, b.size(), "WAL position is 0 (InvalidXLogRecPtr)");
    put_le(b, h.wal_lsn, 8);
    put_le(b, static_cast<std::uint64_t>(h.time), 8);
    return seal(std::move(b), key);
}

namespace {
constexpr const char *tag_names[] = {"",      "boolean", "int2",    "int4", "int8", "float4",
                                     "float8", "numeric", "text",    "varchar", "bytea", "uuid",
                                     "timestamptz", "timestamp", "date", "jsonb", "json", "vector"};
static_assert(sizeof(tag_names) / sizeof(tag_names[0]) == max_type_tag + 1, "one name per tag");
}  // namespace

const char *type_tag_name(type_tag t) noexcept {
    auto i = static_cast<std::size_t>(t);
    return i <= max_type_tag ? tag_names[i] : "";
}

std::optional<type_tag> type_tag_from_name(std::string_view name) noexcept {
    for (std::size_t i = 1; i <= max_type_tag; i++)
        if (name == tag_names[i])
            return static_cast<type_tag>(i);
    return std::nullopt;
}

std::string format_lsn(std::uint64_t lsn) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%X/%X", static_cast<unsigned>(lsn >> 32), static_cast<unsigned>(lsn));
    return buf;
}

std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept {
    auto half = [](std::string_view s, std::uint64_t &out) {
        if (s.empty() || s.size() > 8)
            return false;
        out = 0;
        for (char c : s) {
            int d;
            if (c >= '0' && c <= '9')
                d = c - '0';
            else if (c >= 'a' && c <= 'f')
                d = c - 'a' + 10;
            else if (c >= 'A' && c <= 'F')
                d = c - 'A' + 10;
            else
                return false;
            out = out << 4 | std::uint64_t(d);
        }
        return true;
    };
    std::size_t slash = text.find('/');
    if (slash == std::string_view::npos)
        return std::nullopt;
    std::uint64_t hi, lo;
    if (!half(text.substr(0, slash), hi) || !half(text.substr(slash + 1), lo))
        return std::nullopt;
    return hi << 32 | lo;
}

std::vector<std::uint8_t> vector_value(const float *x, std::size_t dim) {
    if (dim < 1 || dim > max_vector_dim)
        fail(reason::bad_value, 0, "vector with " + std::to_string(dim) + " dimensions");
    std::vector<std::uint8_t> b;
    b.reserve(4 + 4 * dim);
    b.push_back(static_cast<std::uint8_t>(dim >> 8));
    b.push_back(static_cast<std::uint8_t>(dim));
    b.push_back(0);
    b.push_back(0);
    for (std::size_t i = 0; i < dim; i++) {
        std::uint32_t bits;
        std::memcpy(&bits, &x[i], 4);
        for (int s = 24; s >= 0; s -= 8)
            b.push_back(static_cast<std::uint8_t>(bits >> s));
    }
    return b;
}

std::vector<float> vector_from_value(const std::uint8_t *p, std::size_t len) {
    std::string problem = value_problem(type_tag::vector, p, len);
    if (!problem.empty())
        fail(reason::bad_value, 0, problem);
    std::size_t dim = get_be16(p);
    std::vector<float> x(dim);
    for (std::size_t i = 0; i < dim; i++) {
        const std::uint8_t *q = p + 4 + 4 * i;
        std::uint32_t bits = std::uint32_t(q[0]) << 24 | std::uint32_t(q[1]) << 16 | std::uint32_t(q[2]) << 8 | q[3];
        std::memcpy(&x[i], &bits, 4);
    }
    return x;
}

}  // namespace meridian::protocol
