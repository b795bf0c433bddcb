// The replication wire protocol: the signed binary messages the `meridian` output plugin emits and
// meridian-replicator consumes. The byte format is specified in docs/protocol.md; this is its
// only encoder and decoder. Pure C++ (no PostgreSQL headers).
//
// Receiving:  protocol::open(bytes, peer_key)  checks the header, verifies the Ed25519 signature
//             over the exact bytes before it, then decodes; any defect throws protocol_error.
// Sending:    protocol::transaction_writer (streaming, for the plugin's callbacks) or
//             protocol::encode(transaction|heartbeat, key).
#pragma once

#include "core/error.hpp"
#include "core/signing.hpp"
#include "core/uuid.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace meridian::protocol {

inline constexpr std::uint8_t format_version = 1;
inline constexpr std::size_t header_size = 6;                     // version, kind, length
inline constexpr std::size_t max_message_size = 0x3FFFFFFF;       // 1 GiB - 1: PostgreSQL's MaxAllocSize
inline constexpr std::size_t max_name_size = 255;                 // bytes of UTF-8
inline constexpr std::size_t max_columns = 1600;                  // PostgreSQL's MaxHeapAttributeNumber
inline constexpr std::size_t max_vector_dim = 16000;              // the vector type's limit
inline constexpr const char *sqlstate_protocol_violation = "08P01";

enum class kind : std::uint8_t { transaction = 'T', heartbeat = 'H' };
enum class operation : std::uint8_t { insert = 'I', update = 'U', remove = 'D' };

// Which type a column value has; the value is that type's PostgreSQL binary send format.
enum class type_tag : std::uint8_t {
    named = 0x00,  // any other type: its schema-qualified name follows the tag
    boolean = 0x01,
    int2 = 0x02,
    int4 = 0x03,
    int8 = 0x04,
    float4 = 0x05,
    float8 = 0x06,
    numeric = 0x07,
    text = 0x08,
    varchar = 0x09,
    bytea = 0x0A,
    uuid = 0x0B,
    timestamptz = 0x0C,
    timestamp = 0x0D,
    date = 0x0E,
    jsonb = 0x0F,
    json = 0x10,
    vector = 0x11,
};
inline constexpr std::uint8_t max_type_tag = 0x11;

// The column flags byte: a value follows, SQL NULL, or (updates only) an unchanged TOASTed value
// the source could not read, which the receiver keeps as it is.
enum class value_state : std::uint8_t { present = 0, null = 1, unchanged = 2 };

struct column {
    std::string name;
    type_tag type = type_tag::named;
    std::string type_name;  // only for type_tag::named, e.g. "pg_catalog._int4"
    value_state state = value_state::present;
    std::vector<std::uint8_t> value;  // binary send format; empty unless state == present
    bool operator==(const column &o) const {
        return name == o.name && type == o.type && type_name == o.type_name && state == o.state && value == o.value;
    }
};

struct row_change {
    operation op = operation::insert;
    std::string schema;
    std::string table;
    uuid::bytes key{};            // the uuid primary key, RFC byte order
    std::vector<column> columns;  // insert and update only
    bool operator==(const row_change &o) const {
        return op == o.op && schema == o.schema && table == o.table && key == o.key && columns == o.columns;
    }
};

struct transaction {
    std::string region;
    std::uint32_t xid = 0;
    std::uint64_t commit_lsn = 0;   // start of the commit record (txn->final_lsn)
    std::uint64_t end_lsn = 0;      // end of the commit record: the position to confirm
    std::int64_t commit_time = 0;   // TimestampTz: microseconds since 2000-01-01 00:00 UTC
    std::vector<row_change> changes;
    bool operator==(const transaction &o) const {
        return region == o.region && xid == o.xid && commit_lsn == o.commit_lsn && end_lsn == o.end_lsn &&
               commit_time == o.commit_time && changes == o.changes;
    }
};

struct heartbeat {
    std::string region;
    std::uint64_t wal_lsn = 0;  // the source's WAL position when it wrote the heartbeat
    std::int64_t time = 0;      // TimestampTz of that moment
    bool operator==(const heartbeat &o) const { return region == o.region && wal_lsn == o.wal_lsn && time == o.time; }
};

using message = std::variant<transaction, heartbeat>;

// Why a message was refused.
enum class reason {
    truncated,          // the bytes end before the structure does
    bad_length,         // the length field disagrees with the frame, or exceeds a limit
    bad_version,        // format version byte other than 1
    unknown_kind,       // message kind byte other than 'T' / 'H'
    unknown_operation,  // row operation other than 'I' / 'U' / 'D'
    unknown_type,       // type tag not in the table
    bad_flags,          // column flags byte not 0 / 1 / 2, or 2 outside an update
    bad_name,           // empty, longer than 255 bytes, not UTF-8, or containing NUL
    bad_value,          // a value that does not fit its type tag (fixed sizes, vector layout...)
    bad_field,          // an out-of-range header field (zero LSN, end before commit, too many columns)
    duplicate_column,   // the same column name twice in one row
    trailing_bytes,     // bytes left between the last change and the signature
    bad_signature,      // the Ed25519 signature does not verify with the peer's key
    too_large,          // (encoder) the message would exceed max_message_size
    misuse,             // (encoder) calls out of order: a column without a change, columns on a delete
};
const char *to_string(reason r) noexcept;

// A refused message: the reason, the byte offset where decoding stopped, and a PostgreSQL-style
// message ("invalid replication message: truncated") with SQLSTATE 08P01.
class protocol_error : public meridian::error {
public:
    protocol_error(protocol::reason r, std::size_t offset, std::string detail);
    protocol::reason reason() const noexcept { return reason_; }
    std::size_t offset() const noexcept { return offset_; }

private:
    protocol::reason reason_;
    std::size_t offset_;
};

// A read-only view of bytes (C++17 has no std::span).
struct byte_view {
    const std::uint8_t *data = nullptr;
    std::size_t size = 0;
    byte_view() = default;
    byte_view(const std::uint8_t *d, std::size_t n) : data(d), size(n) {}
    byte_view(const std::vector<std::uint8_t> &v) : data(v.data()), size(v.size()) {}
};

struct header {
    std::uint8_t version;
    protocol::kind kind;
    std::uint32_t length;
};

// Checks the 6-byte header against the frame: version, kind, length == frame size, within the
// kind's minimum and max_message_size. Throws protocol_error.
header read_header(byte_view frame);

// Header checks, then the Ed25519 signature (the last 64 bytes) over every byte before it.
// Throws protocol_error (bad_signature when only the signature is wrong).
void verify(byte_view frame, const signing::public_key &key);

// Decodes the structure WITHOUT checking the signature (tests, tools). Receivers use open().
message decode(byte_view frame);
// A transaction message's fixed fields (region, xid, LSNs, commit time) without its changes,
// which stay empty: for a receiver that hands the whole message on (meridian-replicator passes
// it to meridian.apply_transaction, which decodes it all). Header checks as decode(); no
// signature check. Throws protocol_error.
transaction peek_transaction(byte_view frame);
// verify(frame, key), then decode(frame).
message open(byte_view frame, const signing::public_key &key);

std::vector<std::uint8_t> encode(const transaction &t, const signing::secret_key &key);
std::vector<std::uint8_t> encode(const heartbeat &h, const signing::secret_key &key);

// Builds one transaction message change by change, as the output plugin's begin/change/commit
// callbacks see them. Every argument is validated as decode() would; violations throw
// protocol_error (reason misuse/bad_name/bad_value/...) and leave the writer spent:
// every later call throws (misuse).
class transaction_writer {
public:
    transaction_writer(std::string_view region, std::uint32_t xid, std::uint64_t commit_lsn, std::uint64_t end_lsn,
                       std::int64_t commit_time);

    // Starts a row change; an insert or update then takes its columns with add_column().
    void add_change(operation op, std::string_view schema, std::string_view table, const uuid::bytes &key);
    // One column of the current insert/update. type_name only (and always) for type_tag::named.
    void add_column(std::string_view name, type_tag type, std::string_view type_name, value_state state,
                    const std::uint8_t *value, std::size_t len);
    void add_value(std::string_view name, type_tag type, const std::uint8_t *value, std::size_t len) {
        add_column(name, type, {}, value_state::present, value, len);
    }
    void add_value(std::string_view name, type_tag type, const std::vector<std::uint8_t> &value) {
        add_value(name, type, value.data(), value.size());
    }
    void add_null(std::string_view name, type_tag type) { add_column(name, type, {}, value_state::null, nullptr, 0); }

    std::uint32_t change_count() const noexcept { return changes_; }
    std::size_t size() const noexcept { return buf_.size(); }  // bytes so far, without the signature

    // Closes the message, signs it and hands the bytes over; the writer is spent afterwards.
    std::vector<std::uint8_t> finish(const signing::secret_key &key);

private:
    // Runs f; any exception marks the writer spent (a half-written change must never be sealed).
    template <typename F> void guard(F &&f) {
        try {
            f();
        } catch (...) {
            spent_ = true;
            throw;
        }
    }
    void add_change_(operation op, std::string_view schema, std::string_view table, const uuid::bytes &key);
    void add_column_(std::string_view name, type_tag type, std::string_view type_name, value_state state,
                     const std::uint8_t *value, std::size_t len);
    void close_change();
    void need(std::size_t more);
    std::vector<std::uint8_t> buf_;
    std::uint32_t changes_ = 0;
    std::size_t column_count_at_ = 0;  // offset of the open change's column count, 0 if none
    operation op_ = operation::insert;
    std::uint32_t columns_ = 0;
    std::vector<std::pair<std::size_t, std::size_t>> names_;  // the open change's column names in buf_
    bool spent_ = false;
};

// The names of the type tags in the JSON form of messages (docs/protocol.md, appendix) and in
// diagnostics: "boolean", "int2", ..., "vector"; "" for type_tag::named (the type name is carried
// instead). type_tag_from_name is the inverse for the assigned non-named tags (nullopt otherwise).
const char *type_tag_name(type_tag t) noexcept;
std::optional<type_tag> type_tag_from_name(std::string_view name) noexcept;

// An LSN in PostgreSQL's text form "X/X" (upper-case hex, as pg_lsn prints it), and back: the
// parser takes 1-8 hex digits (either case), '/', 1-8 hex digits, nothing else.
std::string format_lsn(std::uint64_t lsn);
std::optional<std::uint64_t> parse_lsn(std::string_view text) noexcept;

// The vector type's binary send format (int16 dim, int16 0, dim float4, all big-endian), and back.
std::vector<std::uint8_t> vector_value(const float *x, std::size_t dim);
std::vector<float> vector_from_value(const std::uint8_t *p, std::size_t len);  // throws protocol_error

}  // namespace meridian::protocol
