// SQL tools over the replication wire codec (docs/protocol.md, appendix A):
//   meridian.decode_message(bytea) -> jsonb       a message as JSON, signature NOT checked
//   meridian.encode_message(jsonb) -> bytea       the inverse, with a signature of 64 zero bytes
//   meridian.verify_message(bytea, bytea) -> bool header and Ed25519 signature check with a key
// The bytes are read and written only by src/core/protocol (decode / encode / verify); this file
// moves values between Datums, JSON and the codec's structs.
#include "core/protocol.hpp"
#include "core/signing.hpp"
#include "core/uuid.hpp"
#include "pg/guard.hpp"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

extern "C" {
#include "datatype/timestamp.h"
#include "utils/builtins.h"
#include "utils/datetime.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"

PG_FUNCTION_INFO_V1(meridian_decode_message);
PG_FUNCTION_INFO_V1(meridian_encode_message);
PG_FUNCTION_INFO_V1(meridian_verify_message);
}

using namespace meridian;
namespace proto = meridian::protocol;

namespace {

// ---------------------------------------------------------------------------------------------
// message -> JSON text

void json_string(std::string &out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (char ch : s) {
        auto c = static_cast<unsigned char>(ch);
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 15];
            } else {
                out += ch;
            }
        }
    }
    out += '"';
}

void json_key(std::string &out, const char *key) {
    json_string(out, key);
    out += ": ";
}

// A TimestampTz as PostgreSQL prints timestamptz in UTC with DateStyle ISO ("2026-11-24
// 10:00:00.5+00", "infinity"), as a JSON string; a value outside timestamptz's range as the JSON
// number of microseconds (encode_message takes both). timestamp2tm and EncodeDateTime do not
// raise errors (the former reports an out-of-range value by its result).
void json_timestamp(std::string &out, std::int64_t t) {
    char buf[MAXDATELEN + 1];
    if (TIMESTAMP_NOT_FINITE(t)) {
        EncodeSpecialTimestamp(t, buf);
        json_string(out, buf);
        return;
    }
    struct pg_tm tm;
    fsec_t fsec;
    if (!IS_VALID_TIMESTAMP(t) || timestamp2tm(t, nullptr, &tm, &fsec, nullptr, nullptr) != 0) {
        out += std::to_string(t);
        return;
    }
    tm.tm_isdst = 0;  // UTC: EncodeDateTime prints no zone for an unknown (negative) isdst
    EncodeDateTime(&tm, fsec, true, 0, nullptr, USE_ISO_DATES, buf);
    json_string(out, buf);
}

void json_bytes(std::string &out, const std::vector<std::uint8_t> &v) {
    static const char hex[] = "0123456789abcdef";
    out += "\"\\\\x";
    for (std::uint8_t b : v) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    out += '"';
}

const char *op_name(proto::operation op) {
    switch (op) {
    case proto::operation::insert: return "insert";
    case proto::operation::update: return "update";
    case proto::operation::remove: return "delete";
    }
    return "?";
}

std::string to_json(const proto::transaction &t) {
    std::string out;
    out.reserve(256);
    out += "{\"kind\": \"transaction\", ";
    json_key(out, "region");
    json_string(out, t.region);
    out += ", \"xid\": " + std::to_string(t.xid);
    out += ", \"commit_lsn\": \"" + proto::format_lsn(t.commit_lsn) + '"';
    out += ", \"end_lsn\": \"" + proto::format_lsn(t.end_lsn) + '"';
    out += ", ";
    json_key(out, "commit_time");
    json_timestamp(out, t.commit_time);
    out += ", \"changes\": [";
    for (std::size_t i = 0; i < t.changes.size(); i++) {
        const proto::row_change &c = t.changes[i];
        if (i)
            out += ", ";
        out += "{\"op\": \"";
        out += op_name(c.op);
        out += "\", ";
        json_key(out, "schema");
        json_string(out, c.schema);
        out += ", ";
        json_key(out, "table");
        json_string(out, c.table);
        out += ", \"key\": \"" + uuid::to_string(c.key) + '"';
        if (c.op != proto::operation::remove) {
            out += ", \"columns\": [";
            for (std::size_t k = 0; k < c.columns.size(); k++) {
                const proto::column &col = c.columns[k];
                if (k)
                    out += ", ";
                out += '{';
                json_key(out, "name");
                json_string(out, col.name);
                out += ", ";
                json_key(out, "type");
                json_string(out, col.type == proto::type_tag::named ? std::string_view(col.type_name)
                                                                    : std::string_view(proto::type_tag_name(col.type)));
                switch (col.state) {
                case proto::value_state::present:
                    out += ", \"value\": ";
                    json_bytes(out, col.value);
                    break;
                case proto::value_state::null:
                    out += ", \"null\": true";
                    break;
                case proto::value_state::unchanged:
                    out += ", \"unchanged\": true";
                    break;
                }
                out += '}';
            }
            out += ']';
        }
        out += '}';
    }
    out += "]}";
    return out;
}

std::string to_json(const proto::heartbeat &h) {
    std::string out = "{\"kind\": \"heartbeat\", ";
    json_key(out, "region");
    json_string(out, h.region);
    out += ", \"wal_lsn\": \"" + proto::format_lsn(h.wal_lsn) + "\", ";
    json_key(out, "time");
    json_timestamp(out, h.time);
    out += '}';
    return out;
}

// ---------------------------------------------------------------------------------------------
// JSON (jsonb) -> message

[[noreturn]] void bad_json(const std::string &what) {
    throw meridian::error(sqlstate::invalid_parameter_value, "invalid replication message JSON: " + what, {},
                          "See the JSON form of messages in docs/protocol.md, appendix A.");
}

// One JSON object of the message: typed member access; every member must be known.
class object {
public:
    object(JsonbContainer *c, std::string where) : c_(c), where_(std::move(where)) {}

    // The member, or nullptr when absent (JSON null counts as present).
    JsonbValue *find(const char *key) {
        JsonbValue *v = pg::call([&] { return getKeyJsonValueFromContainer(c_, key, int(std::strlen(key)), nullptr); });
        if (v)
            found_++;
        return v;
    }
    JsonbValue *need(const char *key) {
        JsonbValue *v = find(key);
        if (!v)
            bad_json(where_ + " has no \"" + key + "\"");
        return v;
    }
    std::string_view string(const char *key) {
        JsonbValue *v = need(key);
        if (v->type != jbvString)
            bad_json(where_ + ": \"" + key + "\" must be a string");
        return std::string_view(v->val.string.val, std::size_t(v->val.string.len));
    }
    // An integer in [0, max] (a JSON number without fraction or exponent).
    std::uint64_t integer(const char *key, std::uint64_t max) { return integer_of(need(key), key, max); }
    std::uint64_t integer_of(JsonbValue *v, const char *key, std::uint64_t max) {
        std::string problem = where_ + ": \"" + key + "\" must be an integer from 0 to " + std::to_string(max);
        if (v->type != jbvNumeric)
            bad_json(problem);
        const char *s = pg::call([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric))); });
        std::uint64_t n = 0;
        if (*s == '\0')
            bad_json(problem);
        for (; *s; s++) {
            if (*s < '0' || *s > '9' || n > (max - std::uint64_t(*s - '0')) / 10)
                bad_json(problem);
            n = n * 10 + std::uint64_t(*s - '0');
        }
        return n;
    }
    // true for `"key": true`, false when absent; anything else is refused.
    bool flag(const char *key) {
        JsonbValue *v = find(key);
        if (!v)
            return false;
        if (v->type != jbvBool || !v->val.boolean)
            bad_json(where_ + ": \"" + key + "\" must be true when present");
        return true;
    }
    JsonbContainer *array(const char *key) {
        JsonbValue *v = need(key);
        if (v->type != jbvBinary || !JsonContainerIsArray(v->val.binary.data) || JsonContainerIsScalar(v->val.binary.data))
            bad_json(where_ + ": \"" + key + "\" must be an array");
        return v->val.binary.data;
    }
    std::uint64_t lsn(const char *key) {
        std::string_view s = string(key);
        auto l = proto::parse_lsn(s);
        if (!l)
            bad_json(where_ + ": \"" + key + "\" is not an LSN (\"X/X\")");
        return *l;
    }
    // A timestamptz text (any input form PostgreSQL accepts), or a JSON integer of microseconds.
    std::int64_t timestamp(const char *key) {
        JsonbValue *v = need(key);
        if (v->type == jbvNumeric) {
            const char *s = pg::call([&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric))); });
            char *end = nullptr;
            errno = 0;
            long long n = std::strtoll(s, &end, 10);
            if (errno != 0 || end == s || *end != '\0')
                bad_json(where_ + ": \"" + key + "\" must be a timestamptz text or an integer of microseconds");
            return n;
        }
        if (v->type != jbvString)
            bad_json(where_ + ": \"" + key + "\" must be a timestamptz text or an integer of microseconds");
        std::string text(v->val.string.val, std::size_t(v->val.string.len));
        return pg::call([&] {
            return DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()),
                                                           ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
        });
    }
    // After reading every member: refuses members nobody asked for.
    void no_others() {
        if (std::size_t(JsonContainerSize(c_)) != found_)
            bad_json(where_ + " has an unknown member");
    }

private:
    JsonbContainer *c_;
    std::string where_;
    std::size_t found_ = 0;
};

JsonbContainer *element_object(JsonbContainer *array, std::uint32_t i, const std::string &where) {
    JsonbValue *v = pg::call([&] { return getIthJsonbValueFromContainer(array, i); });
    if (!v || v->type != jbvBinary || !JsonContainerIsObject(v->val.binary.data))
        bad_json(where + " must be an object");
    return v->val.binary.data;
}

std::vector<std::uint8_t> hex_value(std::string_view s, const std::string &where) {
    auto digit = [](char c) -> int {
        if (c >= '0' && c <= '9')
            return c - '0';
        if (c >= 'a' && c <= 'f')
            return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
            return c - 'A' + 10;
        return -1;
    };
    if (s.size() < 2 || s[0] != '\\' || s[1] != 'x' || s.size() % 2 != 0)
        bad_json(where + ": \"value\" must be \"\\\\x\" followed by pairs of hex digits");
    std::vector<std::uint8_t> out;
    out.reserve((s.size() - 2) / 2);
    for (std::size_t i = 2; i < s.size(); i += 2) {
        int hi = digit(s[i]), lo = digit(s[i + 1]);
        if (hi < 0 || lo < 0)
            bad_json(where + ": \"value\" must be \"\\\\x\" followed by pairs of hex digits");
        out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
    }
    return out;
}

proto::row_change change_from(JsonbContainer *c, const std::string &where) {
    object o(c, where);
    proto::row_change rc;
    std::string_view op = o.string("op");
    if (op == "insert")
        rc.op = proto::operation::insert;
    else if (op == "update")
        rc.op = proto::operation::update;
    else if (op == "delete")
        rc.op = proto::operation::remove;
    else
        bad_json(where + ": \"op\" must be \"insert\", \"update\" or \"delete\"");
    rc.schema = std::string(o.string("schema"));
    rc.table = std::string(o.string("table"));
    auto key = uuid::parse(o.string("key"));
    if (!key)
        bad_json(where + ": \"key\" is not a uuid");
    rc.key = *key;
    if (rc.op != proto::operation::remove) {
        JsonbContainer *cols = o.array("columns");
        std::uint32_t n = JsonContainerSize(cols);
        rc.columns.reserve(n);
        for (std::uint32_t k = 0; k < n; k++) {
            std::string cw = where + ", column " + std::to_string(k + 1);
            object co(element_object(cols, k, cw), cw);
            proto::column col;
            col.name = std::string(co.string("name"));
            std::string_view type = co.string("type");
            if (type.find('.') != std::string_view::npos) {
                col.type = proto::type_tag::named;
                col.type_name = std::string(type);
            } else if (auto tag = proto::type_tag_from_name(type)) {
                col.type = *tag;
            } else {
                bad_json(cw + ": unknown type \"" + std::string(type) +
                         "\" (a tag name, or a schema-qualified type name)");
            }
            bool null = co.flag("null");
            bool unchanged = co.flag("unchanged");
            JsonbValue *value = co.find("value");
            if (int(null) + int(unchanged) + int(value != nullptr) != 1)
                bad_json(cw + " needs exactly one of \"value\", \"null\": true, \"unchanged\": true");
            if (value) {
                if (value->type != jbvString)
                    bad_json(cw + ": \"value\" must be a string");
                col.value = hex_value(std::string_view(value->val.string.val, std::size_t(value->val.string.len)), cw);
            }
            col.state = null ? proto::value_state::null
                             : unchanged ? proto::value_state::unchanged : proto::value_state::present;
            co.no_others();
            rc.columns.push_back(std::move(col));
        }
    }
    o.no_others();
    return rc;
}

// The codec signs what it encodes; an unsigned message is signed with this fixed throwaway key
// and then gets 64 zero bytes in place of the signature.
const signing::secret_key &throwaway_key() {
    static const signing::secret_key key = [] {
        std::uint8_t seed[signing::seed_size] = {0};
        return signing::secret_key::from_seed(seed, sizeof seed);
    }();
    return key;
}

std::vector<std::uint8_t> encode_json(Jsonb *jb) {
    if (!JB_ROOT_IS_OBJECT(jb))
        bad_json("the message must be a JSON object");
    object o(&jb->root, "the message");
    std::string_view kind = o.string("kind");
    std::vector<std::uint8_t> bytes;
    if (kind == "transaction") {
        proto::transaction t;
        t.region = std::string(o.string("region"));
        t.xid = static_cast<std::uint32_t>(o.integer("xid", UINT32_MAX));
        t.commit_lsn = o.lsn("commit_lsn");
        t.end_lsn = o.lsn("end_lsn");
        t.commit_time = o.timestamp("commit_time");
        JsonbContainer *changes = o.array("changes");
        std::uint32_t n = JsonContainerSize(changes);
        t.changes.reserve(n);
        for (std::uint32_t i = 0; i < n; i++) {
            std::string where = "change " + std::to_string(i + 1);
            t.changes.push_back(change_from(element_object(changes, i, where), where));
        }
        o.no_others();
        bytes = proto::encode(t, throwaway_key());
    } else if (kind == "heartbeat") {
        proto::heartbeat h;
        h.region = std::string(o.string("region"));
        h.wal_lsn = o.lsn("wal_lsn");
        h.time = o.timestamp("time");
        o.no_others();
        bytes = proto::encode(h, throwaway_key());
    } else {
        bad_json("\"kind\" must be \"transaction\" or \"heartbeat\"");
    }
    std::memset(bytes.data() + bytes.size() - signing::signature_size, 0, signing::signature_size);
    return bytes;
}

proto::byte_view view_of(bytea *b) {
    return proto::byte_view(reinterpret_cast<const std::uint8_t *>(VARDATA_ANY(b)), VARSIZE_ANY_EXHDR(b));
}

}  // namespace

Datum meridian_decode_message(PG_FUNCTION_ARGS) {
    bytea *in = PG_GETARG_BYTEA_PP(0);
    return pg::guarded([&] {
        proto::message m = proto::decode(view_of(in));
        std::string json = std::holds_alternative<proto::transaction>(m) ? to_json(std::get<proto::transaction>(m))
                                                                         : to_json(std::get<proto::heartbeat>(m));
        return pg::call([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str())); });
    });
}

Datum meridian_encode_message(PG_FUNCTION_ARGS) {
    Jsonb *in = PG_GETARG_JSONB_P(0);
    return pg::guarded([&] {
        std::vector<std::uint8_t> bytes = encode_json(in);
        bytea *out = pg::call([&] { return static_cast<bytea *>(palloc(VARHDRSZ + bytes.size())); });
        SET_VARSIZE(out, VARHDRSZ + bytes.size());
        std::memcpy(VARDATA(out), bytes.data(), bytes.size());
        return PointerGetDatum(out);
    });
}

Datum meridian_verify_message(PG_FUNCTION_ARGS) {
    bytea *msg = PG_GETARG_BYTEA_PP(0);
    bytea *key = PG_GETARG_BYTEA_PP(1);
    return pg::guarded([&] {
        signing::public_key pk = signing::public_key_from_bytes(reinterpret_cast<const std::uint8_t *>(VARDATA_ANY(key)),
                                                                VARSIZE_ANY_EXHDR(key));
        try {
            proto::verify(view_of(msg), pk);
        } catch (const proto::protocol_error &) {
            return BoolGetDatum(false);
        }
        return BoolGetDatum(true);
    });
}
