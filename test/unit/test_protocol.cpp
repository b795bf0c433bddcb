// Unit tests of src/core/signing and src/core/protocol (docs/protocol.md): Ed25519 key handling,
// round trips of every message kind, and rejection of truncated, garbage, tampered, foreign-key,
// unknown-version and unknown-tag messages. Deterministic: fixed seeds everywhere.
#include "core/protocol.hpp"
#include "core/signing.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace meridian;
using namespace meridian::protocol;

namespace {

using bytes = std::vector<std::uint8_t>;

signing::secret_key key_from(std::uint8_t fill) {
    std::uint8_t seed[signing::seed_size];
    for (std::size_t i = 0; i < sizeof seed; i++)
        seed[i] = static_cast<std::uint8_t>(fill + 7 * i);
    return signing::secret_key::from_seed(seed, sizeof seed);
}

const signing::secret_key &key_a() {
    static const signing::secret_key k = key_from(1);
    return k;
}
const signing::secret_key &key_b() {
    static const signing::secret_key k = key_from(2);
    return k;
}

const signing::public_key &pk_a() {
    static const signing::public_key k = key_a().public_key();
    return k;
}

bytes be32(std::uint32_t v) { return {std::uint8_t(v >> 24), std::uint8_t(v >> 16), std::uint8_t(v >> 8), std::uint8_t(v)}; }
bytes be64(std::uint64_t v) {
    bytes b;
    for (int s = 56; s >= 0; s -= 8)
        b.push_back(std::uint8_t(v >> s));
    return b;
}
bytes str(const std::string &s) { return bytes(s.begin(), s.end()); }

uuid::bytes key_of(std::uint32_t i) {
    uuid::bytes k{};
    for (int j = 0; j < 16; j++)
        k[j] = std::uint8_t(i * 31 + j);
    return k;
}

column value_col(std::string name, type_tag t, bytes v) {
    column c;
    c.name = std::move(name);
    c.type = t;
    c.value = std::move(v);
    return c;
}
column null_col(std::string name, type_tag t) {
    column c;
    c.name = std::move(name);
    c.type = t;
    c.state = value_state::null;
    return c;
}

transaction base_tx(std::string region = "us-east") {
    transaction t;
    t.region = std::move(region);
    t.xid = 7431;
    t.commit_lsn = 0x16B3748ULL;
    t.end_lsn = 0x16B37C0ULL;
    t.commit_time = 789012345678901LL;
    return t;
}

// A transaction with one change of every shape: insert with every type tag, update with NULLs and
// an unchanged value, delete, and a named type.
transaction rich_tx() {
    transaction t = base_tx();
    row_change ins;
    ins.op = operation::insert;
    ins.schema = "public";
    ins.table = "items";
    ins.key = key_of(1);
    float v[3] = {1.5f, -0.0f, 3.25e-7f};
    ins.columns.push_back(value_col("id", type_tag::uuid, bytes(ins.key.begin(), ins.key.end())));
    ins.columns.push_back(value_col("embedding", type_tag::vector, vector_value(v, 3)));
    ins.columns.push_back(value_col("flag", type_tag::boolean, {1}));
    ins.columns.push_back(value_col("small", type_tag::int2, {0x80, 0x00}));
    ins.columns.push_back(value_col("n", type_tag::int4, be32(42)));
    ins.columns.push_back(value_col("big", type_tag::int8, be64(1ULL << 62)));
    ins.columns.push_back(value_col("f4", type_tag::float4, be32(0x3f800000)));
    ins.columns.push_back(value_col("f8", type_tag::float8, be64(0x400921fb54442d18ULL)));
    ins.columns.push_back(value_col("num", type_tag::numeric, {0, 1, 0, 0, 0, 0, 0, 0, 0, 12}));
    ins.columns.push_back(value_col("txt", type_tag::text, str("héllo")));
    ins.columns.push_back(value_col("vc", type_tag::varchar, {}));
    ins.columns.push_back(value_col("raw", type_tag::bytea, {0, 0xff, 0}));
    ins.columns.push_back(value_col("ts", type_tag::timestamptz, be64(123)));
    ins.columns.push_back(value_col("t", type_tag::timestamp, be64(456)));
    ins.columns.push_back(value_col("d", type_tag::date, be32(9000)));
    ins.columns.push_back(value_col("payload", type_tag::jsonb, str("\x01{\"a\": 1}")));
    ins.columns.push_back(value_col("j", type_tag::json, str("[1,2]")));
    column named = value_col("arr", type_tag::named, {0, 0, 0, 0});
    named.type_name = "pg_catalog._int4";
    ins.columns.push_back(named);
    t.changes.push_back(ins);

    row_change upd;
    upd.op = operation::update;
    upd.schema = "app";
    upd.table = "docs";
    upd.key = key_of(2);
    upd.columns.push_back(null_col("payload", type_tag::jsonb));
    column unchanged;
    unchanged.name = "embedding";
    unchanged.type = type_tag::vector;
    unchanged.state = value_state::unchanged;
    upd.columns.push_back(unchanged);
    column named_null = null_col("mood", type_tag::named);
    named_null.type_name = "app.mood";
    upd.columns.push_back(named_null);
    t.changes.push_back(upd);

    row_change del;
    del.op = operation::remove;
    del.schema = "public";
    del.table = "items";
    del.key = key_of(3);
    t.changes.push_back(del);
    return t;
}

heartbeat base_hb() { return heartbeat{"eu-west", 0x3000060ULL, 789012399999999LL}; }

reason reason_of(const bytes &m, const signing::public_key *key = nullptr) {
    try {
        if (key)
            open(m, *key);
        else
            decode(m);
    } catch (const protocol_error &e) {
        return e.reason();
    }
    ADD_FAILURE() << "message of " << m.size() << " bytes was accepted";
    return reason::misuse;
}

// Re-frames body bytes (everything between the header and the signature) as a message of the given
// kind with a correct length and a valid signature by key_a: exercises the body decoder alone.
bytes frame(kind k, const bytes &body, std::uint8_t version = format_version) {
    bytes m = {version, static_cast<std::uint8_t>(k), 0, 0, 0, 0};
    m.insert(m.end(), body.begin(), body.end());
    std::uint32_t len = static_cast<std::uint32_t>(m.size() + signing::signature_size);
    for (int i = 0; i < 4; i++)
        m[2 + i] = std::uint8_t(len >> (8 * i));
    signing::signature s = key_a().sign(m.data(), m.size());
    m.insert(m.end(), s.begin(), s.end());
    return m;
}
bytes body_of(const bytes &m) { return bytes(m.begin() + header_size, m.end() - signing::signature_size); }

}  // namespace

// ---- signing ----

TEST(Signing, SignVerifyAndKeyHandling) {
    const std::string msg = "meridian";
    auto m = reinterpret_cast<const std::uint8_t *>(msg.data());
    signing::signature s = key_a().sign(m, msg.size());
    EXPECT_TRUE(signing::verify(key_a().public_key(), m, msg.size(), s.data()));
    EXPECT_FALSE(signing::verify(key_b().public_key(), m, msg.size(), s.data()));
    s[10] ^= 0x01;
    EXPECT_FALSE(signing::verify(key_a().public_key(), m, msg.size(), s.data()));

    // Same seed, same key pair; Ed25519 signatures are deterministic.
    EXPECT_EQ(key_from(1).public_key(), key_a().public_key());
    EXPECT_EQ(key_from(1).sign(m, msg.size()), key_a().sign(m, msg.size()));

    // The 64-byte form loads back; a damaged public half or wrong length is refused.
    auto raw = key_a().bytes();
    signing::secret_key loaded = signing::secret_key::from_bytes(raw.data(), raw.size());
    EXPECT_EQ(loaded.public_key(), key_a().public_key());
    raw[40] ^= 0x01;
    EXPECT_THROW(signing::secret_key::from_bytes(raw.data(), raw.size()), meridian::error);
    EXPECT_THROW(signing::secret_key::from_bytes(raw.data(), 32), meridian::error);
    auto pk = key_a().public_key();
    EXPECT_EQ(signing::public_key_from_bytes(pk.data(), 32), pk);
    EXPECT_THROW(signing::public_key_from_bytes(pk.data(), 31), meridian::error);

    // Random key pairs differ and work.
    signing::secret_key g1 = signing::secret_key::generate(), g2 = signing::secret_key::generate();
    EXPECT_NE(g1.public_key(), g2.public_key());
    signing::signature gs = g1.sign(m, msg.size());
    EXPECT_TRUE(signing::verify(g1.public_key(), m, msg.size(), gs.data()));
    EXPECT_FALSE(signing::verify(g2.public_key(), m, msg.size(), gs.data()));
}

TEST(Signing, MovedFromKeyIsWiped) {
    signing::secret_key k = key_from(9);
    auto pk = k.public_key();
    signing::secret_key moved = std::move(k);
    EXPECT_EQ(moved.public_key(), pk);
    for (std::uint8_t b : k.bytes())  // NOLINT(bugprone-use-after-move): the wipe is the point
        EXPECT_EQ(b, 0);
}

// ---- round trips ----

TEST(Protocol, HeaderLayout) {
    bytes m = encode(base_tx(), key_a());
    EXPECT_EQ(m[0], 1);
    EXPECT_EQ(m[1], 'T');
    std::uint32_t len = m[2] | m[3] << 8 | m[4] << 16 | std::uint32_t(m[5]) << 24;
    EXPECT_EQ(len, m.size());
    // Empty transaction: 6 header + 1+7 region + 4 xid + 3*8 + 4 count + 64 signature.
    EXPECT_EQ(m.size(), 6u + 8 + 4 + 24 + 4 + 64);
    EXPECT_EQ(m[6], 7);
    EXPECT_EQ(std::string(m.begin() + 7, m.begin() + 14), "us-east");
    EXPECT_EQ(m[14], 7431 & 0xff);  // xid little-endian
    EXPECT_EQ(m[18], 0x48);         // commit LSN 0x16B3748 little-endian
    EXPECT_EQ(m[19], 0x37);
    header h = read_header(m);
    EXPECT_EQ(h.kind, kind::transaction);
    EXPECT_EQ(h.length, m.size());
    bytes hb = encode(base_hb(), key_a());
    EXPECT_EQ(hb.size(), 6u + 8 + 8 + 8 + 64);
    EXPECT_EQ(hb[1], 'H');
    // The worked example of docs/protocol.md section 4, byte for byte.
    const bytes doc_example = {0x01, 0x48, 0x5e, 0x00, 0x00, 0x00, 0x07, 'u',  's',  '-',  'e',  'a',  's',  't', 0x60,
                               0x00, 0x00, 0x03, 0x00, 0x00, 0x00, 0x00, 0xff, 0x4b, 0xd3, 0x43, 0x9a, 0xcd, 0x02, 0x00};
    heartbeat example{"us-east", 0x3000060ULL, 789012399999999LL};
    bytes eb = encode(example, key_a());
    EXPECT_EQ(bytes(eb.begin(), eb.end() - 64), doc_example);
    EXPECT_TRUE(signing::verify(pk_a(), eb.data(), 30, eb.data() + 30));
}

TEST(Protocol, RoundTripEmptyTransaction) {
    transaction t = base_tx();
    bytes m = encode(t, key_a());
    message got = open(m, key_a().public_key());
    ASSERT_TRUE(std::holds_alternative<transaction>(got));
    EXPECT_EQ(std::get<transaction>(got), t);
}

TEST(Protocol, RoundTripEveryShape) {
    transaction t = rich_tx();
    bytes m = encode(t, key_a());
    transaction got = std::get<transaction>(open(m, key_a().public_key()));
    EXPECT_EQ(got, t);
    EXPECT_EQ(got.changes[0].columns[1].value.size(), 4u + 12);
    std::vector<float> v = vector_from_value(got.changes[0].columns[1].value.data(), got.changes[0].columns[1].value.size());
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v[0], 1.5f);
    EXPECT_TRUE(v[1] == 0.0f && std::signbit(v[1]));  // bit-exact: -0.0 travels as is
    EXPECT_EQ(v[2], 3.25e-7f);
    // Encoding is a function of the content: same transaction, same key, same bytes.
    EXPECT_EQ(encode(got, key_a()), m);
}

TEST(Protocol, RoundTripManyRowsAndLargeVectors) {
    transaction t = base_tx();
    std::mt19937 rng(12345);
    std::normal_distribution<float> nd;
    for (std::uint32_t i = 0; i < 2000; i++) {
        row_change c;
        c.op = i % 3 == 0 ? operation::insert : i % 3 == 1 ? operation::update : operation::remove;
        c.schema = "public";
        c.table = "embeddings";
        c.key = key_of(i);
        if (c.op != operation::remove) {
            std::size_t dim = i == 0 ? max_vector_dim : 1 + i % 300;
            std::vector<float> x(dim);
            for (float &f : x)
                f = nd(rng);
            c.columns.push_back(value_col("embedding", type_tag::vector, vector_value(x.data(), dim)));
            c.columns.push_back(i % 2 ? null_col("payload", type_tag::jsonb) : value_col("payload", type_tag::jsonb, str("\x01{}")));
        }
        t.changes.push_back(c);
    }
    bytes m = encode(t, key_a());
    transaction got = std::get<transaction>(open(m, key_a().public_key()));
    EXPECT_EQ(got, t);
    EXPECT_EQ(vector_from_value(got.changes[0].columns[0].value.data(), got.changes[0].columns[0].value.size()).size(),
              max_vector_dim);
}

TEST(Protocol, RoundTripLongAndUnicodeNames) {
    std::string long_name(255, 'x');
    for (const std::string &region : {std::string("東京-1"), std::string("são-paulo"), std::string("🌍-edge"), long_name}) {
        transaction t = base_tx(region);
        row_change c;
        c.op = operation::insert;
        c.schema = long_name;
        c.table = "Ünïcode table";
        c.key = key_of(5);
        c.columns.push_back(value_col(long_name, type_tag::text, str(region)));
        column named = null_col("x", type_tag::named);
        named.type_name = long_name;
        c.columns.push_back(named);
        t.changes.push_back(c);
        EXPECT_EQ(std::get<transaction>(open(encode(t, key_a()), key_a().public_key())), t) << region;
        heartbeat h = base_hb();
        h.region = region;
        EXPECT_EQ(std::get<heartbeat>(open(encode(h, key_b()), key_b().public_key())), h) << region;
    }
}

TEST(Protocol, RoundTripHeartbeat) {
    heartbeat h = base_hb();
    h.time = -5;  // before 2000-01-01 is still a timestamp
    bytes m = encode(h, key_a());
    EXPECT_EQ(std::get<heartbeat>(open(m, key_a().public_key())), h);
}

TEST(Protocol, StreamingWriterMatchesEncode) {
    transaction t = rich_tx();
    transaction_writer w(t.region, t.xid, t.commit_lsn, t.end_lsn, t.commit_time);
    for (const row_change &c : t.changes) {
        w.add_change(c.op, c.schema, c.table, c.key);
        for (const column &col : c.columns)
            w.add_column(col.name, col.type, col.type_name, col.state, col.value.data(), col.value.size());
    }
    EXPECT_EQ(w.change_count(), 3u);
    EXPECT_EQ(w.finish(key_a()), encode(t, key_a()));
    EXPECT_THROW(w.finish(key_a()), protocol_error);  // spent
}

// ---- the encoder refuses what the decoder would refuse ----

TEST(Protocol, EncoderRejectsInvalidInput) {
    auto expect_reason = [](reason want, auto &&f) {
        try {
            f();
            ADD_FAILURE() << "accepted, expected " << to_string(want);
        } catch (const protocol_error &e) {
            EXPECT_EQ(e.reason(), want) << e.what() << ": " << e.detail();
            EXPECT_STREQ(e.sqlstate(), "08P01");
        }
    };
    const uuid::bytes k = key_of(1);
    expect_reason(reason::bad_name, [] { transaction_writer("", 1, 1, 2, 0); });
    expect_reason(reason::bad_name, [] { transaction_writer(std::string(256, 'r'), 1, 1, 2, 0); });
    expect_reason(reason::bad_name, [] { transaction_writer("bad\xff", 1, 1, 2, 0); });
    expect_reason(reason::bad_name, [] { transaction_writer(std::string("n\0ul", 4), 1, 1, 2, 0); });
    expect_reason(reason::bad_field, [] { transaction_writer("r", 1, 0, 2, 0); });
    expect_reason(reason::bad_field, [] { transaction_writer("r", 1, 5, 5, 0); });
    expect_reason(reason::misuse, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_null("c", type_tag::int4);  // no change open
    });
    expect_reason(reason::misuse, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::remove, "s", "t", k);
        w.add_null("c", type_tag::int4);  // a delete has no columns
    });
    expect_reason(reason::bad_value, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::insert, "s", "t", k);
        w.add_value("c", type_tag::int4, bytes{1, 2, 3});
    });
    expect_reason(reason::bad_value, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::insert, "s", "t", k);
        bytes v = {0, 2, 0, 0, 0, 0, 0, 0};  // 2 dimensions, 1 float
        w.add_value("c", type_tag::vector, v);
    });
    expect_reason(reason::bad_flags, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::insert, "s", "t", k);
        w.add_column("c", type_tag::text, {}, value_state::unchanged, nullptr, 0);
    });
    expect_reason(reason::misuse, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::insert, "s", "t", k);
        w.add_column("c", type_tag::named, {}, value_state::null, nullptr, 0);  // no type name
    });
    expect_reason(reason::duplicate_column, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::insert, "s", "t", k);
        w.add_null("c", type_tag::int4);
        w.add_null("c", type_tag::text);
        w.finish(key_a());
    });
    expect_reason(reason::bad_name, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        w.add_change(operation::insert, "s", "", k);
    });
    expect_reason(reason::misuse, [&] {
        transaction_writer w("r", 1, 1, 2, 0);
        try {
            w.add_change(operation::insert, "s", "", k);
        } catch (const protocol_error &) {
        }
        w.finish(key_a());  // a half-written change is never sealed
    });
    expect_reason(reason::bad_field, [&] { encode(heartbeat{"r", 0, 0}, key_a()); });
}

// ---- rejection ----

TEST(Protocol, RejectsEveryTruncation) {
    for (const bytes &m : {encode(rich_tx(), key_a()), encode(base_tx(), key_a()), encode(base_hb(), key_a())}) {
        for (std::size_t n = 0; n < m.size(); n++) {
            bytes cut(m.begin(), m.begin() + n);
            reason r = reason_of(cut, nullptr);
            EXPECT_TRUE(r == reason::truncated || r == reason::bad_length) << n << ": " << to_string(r);
            EXPECT_NE(reason_of(cut, &pk_a()) , reason::misuse);
        }
    }
}

TEST(Protocol, RejectsEveryTruncatedBodyEvenWhenFramedAndSigned) {
    // A signer that cuts the body short (consistent length field, valid signature) is still caught:
    // every count and length is checked against the bytes that are there.
    for (const bytes &m : {encode(rich_tx(), key_a()), encode(base_hb(), key_a())}) {
        kind k = static_cast<kind>(m[1]);
        bytes body = body_of(m);
        for (std::size_t n = 0; n < body.size(); n++) {
            bytes cut = frame(k, bytes(body.begin(), body.begin() + n));
            reason r = reason_of(cut, &pk_a());
            EXPECT_TRUE(r == reason::truncated || r == reason::bad_length) << n << ": " << to_string(r);
        }
        // One byte too many in the body: trailing bytes.
        body.push_back(0);
        EXPECT_EQ(reason_of(frame(k, body), &pk_a()), reason::trailing_bytes);
    }
}

TEST(Protocol, RejectsRandomGarbage) {
    std::mt19937_64 rng(20240611);
    std::uniform_int_distribution<int> byte(0, 255);
    int accepted = 0;
    for (int i = 0; i < 5000; i++) {
        std::size_t n = static_cast<std::size_t>(rng() % 400);
        bytes g(n);
        for (auto &b : g)
            b = static_cast<std::uint8_t>(byte(rng));
        // Half the buffers get a plausible header so the body decoder sees them too.
        if (i % 2 == 0 && n >= header_size) {
            g[0] = format_version;
            g[1] = i % 4 == 0 ? 'T' : 'H';
            for (int k = 0; k < 4; k++)
                g[2 + k] = std::uint8_t(n >> (8 * k));
        }
        try {
            open(g, key_a().public_key());
            accepted++;
        } catch (const protocol_error &) {
        }
        try {
            decode(g);
        } catch (const protocol_error &) {
        }
        // And signed garbage bodies, which only the structure can refuse.
        if (i % 2 == 0 && n >= header_size) {
            bytes signed_garbage = frame(i % 4 == 0 ? kind::transaction : kind::heartbeat, bytes(g.begin() + header_size, g.end()));
            try {
                open(signed_garbage, key_a().public_key());
            } catch (const protocol_error &) {
            }
        }
    }
    EXPECT_EQ(accepted, 0);
}

TEST(Protocol, MutatedMessagesNeverCrashTheDecoder) {
    // Bytes of real messages with random bytes overwritten, decoded without the signature check
    // (the structural decoder must stand on its own), framed and re-signed, and opened.
    const bytes originals[] = {encode(rich_tx(), key_a()), encode(base_hb(), key_a())};
    std::mt19937_64 rng(77);
    int decoded = 0, refused = 0;
    for (int i = 0; i < 4000; i++) {
        bytes m = originals[i % 2];
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; e++)
            m[header_size + rng() % (m.size() - header_size - signing::signature_size)] = static_cast<std::uint8_t>(rng());
        try {
            decode(m);
            decoded++;
        } catch (const protocol_error &) {
            refused++;
        }
        try {
            open(frame(static_cast<kind>(m[1]), body_of(m)), key_a().public_key());
        } catch (const protocol_error &) {
        }
    }
    EXPECT_EQ(decoded + refused, 4000);
    EXPECT_GT(refused, 0);
}

TEST(Protocol, RejectsAFlippedByteAnywhere) {
    for (const bytes &m : {encode(rich_tx(), key_a()), encode(base_hb(), key_a())}) {
        for (std::size_t i = 0; i < m.size(); i++) {
            for (std::uint8_t mask : {std::uint8_t(0x01), std::uint8_t(0x80), std::uint8_t(0xff)}) {
                bytes f = m;
                f[i] ^= mask;
                reason r = reason_of(f, &pk_a());
                if (i >= header_size)
                    EXPECT_EQ(r, reason::bad_signature) << "byte " << i;
                else
                    EXPECT_NE(r, reason::misuse);
            }
        }
    }
}

TEST(Protocol, RejectsAnotherRegionsKey) {
    bytes m = encode(rich_tx(), key_b());
    EXPECT_EQ(reason_of(m, &pk_a()), reason::bad_signature);
    EXPECT_NO_THROW(open(m, key_b().public_key()));
    bytes hb = encode(base_hb(), key_b());
    EXPECT_EQ(reason_of(hb, &pk_a()), reason::bad_signature);
    // A signature moved from another message does not carry over.
    bytes other = encode(base_tx(), key_a());
    bytes m2 = encode(rich_tx(), key_a());
    std::copy(other.end() - 64, other.end(), m2.end() - 64);
    EXPECT_EQ(reason_of(m2, &pk_a()), reason::bad_signature);
}

TEST(Protocol, RejectsUnknownVersionsKindsAndTags) {
    bytes m = encode(rich_tx(), key_a());
    for (std::uint8_t v : {0, 2, 3, 0x54, 255}) {
        bytes f = m;
        f[0] = v;
        EXPECT_EQ(reason_of(f), reason::bad_version);
        EXPECT_EQ(reason_of(f, &pk_a()), reason::bad_version);
        // Even when re-signed: a version-2 message is not decoded as version 1.
        EXPECT_EQ(reason_of(frame(kind::transaction, body_of(m), v), &pk_a()), reason::bad_version);
    }
    for (int k : {0, int('t'), int('h'), int('B'), int('C'), 255}) {
        bytes f = m;
        f[1] = static_cast<std::uint8_t>(k);
        EXPECT_EQ(reason_of(f, &pk_a()), reason::unknown_kind);
    }

    // Hand-built bodies, correctly framed and signed: one insert of one column.
    auto body = [](std::uint8_t op, std::uint8_t tag, std::uint8_t flags, const bytes &value) {
        bytes b = {2, 'u', 's'};                     // region
        bytes fixed(4 + 8 + 8 + 8, 0);
        fixed[4] = 1;                                // commit LSN 1
        fixed[12] = 2;                               // end LSN 2
        b.insert(b.end(), fixed.begin(), fixed.end());
        b.insert(b.end(), {1, 0, 0, 0});             // one change
        b.insert(b.end(), {op, 1, 's', 1, 't'});
        b.insert(b.end(), 16, 0xab);                 // key
        if (op != 'D') {
            b.insert(b.end(), {1, 0, 1, 'c', tag});  // one column "c"
            b.push_back(flags);
            if (flags == 0) {
                std::uint32_t n = static_cast<std::uint32_t>(value.size());
                b.insert(b.end(), {std::uint8_t(n), std::uint8_t(n >> 8), std::uint8_t(n >> 16), std::uint8_t(n >> 24)});
                b.insert(b.end(), value.begin(), value.end());
            }
        }
        return b;
    };
    const signing::public_key pk = key_a().public_key();
    EXPECT_NO_THROW(open(frame(kind::transaction, body('I', 0x03, 0, be32(5))), pk));
    EXPECT_NO_THROW(open(frame(kind::transaction, body('U', 0x03, 2, {})), pk));
    EXPECT_NO_THROW(open(frame(kind::transaction, body('D', 0, 0, {})), pk));
    for (std::uint8_t tag : {0x12, 0x20, 0x7f, 0xff})
        EXPECT_EQ(reason_of(frame(kind::transaction, body('I', tag, 0, be32(5))), &pk), reason::unknown_type);
    for (int op : {0, int('i'), int('T'), int('X'), 0xff})
        EXPECT_EQ(reason_of(frame(kind::transaction, body(static_cast<std::uint8_t>(op), 0x03, 0, be32(5))), &pk), reason::unknown_operation);
    for (std::uint8_t flags : {3, 4, 0x80})
        EXPECT_EQ(reason_of(frame(kind::transaction, body('U', 0x03, flags, {})), &pk), reason::bad_flags);
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x03, 2, {})), &pk), reason::bad_flags);  // unchanged in insert
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x03, 0, {1, 2})), &pk), reason::bad_value);
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x01, 0, {2})), &pk), reason::bad_value);
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x0F, 0, str("{}"))), &pk), reason::bad_value);
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x11, 0, {0, 1, 0, 1, 0, 0, 0, 0})), &pk), reason::bad_value);
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x11, 0, {0, 0, 0, 0})), &pk), reason::bad_value);
    EXPECT_EQ(reason_of(frame(kind::transaction, body('I', 0x07, 0, {0, 1, 0, 0, 0, 0, 0, 0})), &pk), reason::bad_value);

    // Invalid names and header fields in an otherwise valid message.
    bytes b = body('I', 0x03, 0, be32(5));
    bytes bad_region = b;
    bad_region[1] = 0xC0;  // overlong UTF-8 lead byte
    EXPECT_EQ(reason_of(frame(kind::transaction, bad_region), &pk), reason::bad_name);
    bytes empty_region = b;
    empty_region.erase(empty_region.begin() + 1, empty_region.begin() + 3);
    empty_region[0] = 0;
    EXPECT_EQ(reason_of(frame(kind::transaction, empty_region), &pk), reason::bad_name);
    bytes zero_lsn = b;
    zero_lsn[3 + 4] = 0;
    EXPECT_EQ(reason_of(frame(kind::transaction, zero_lsn), &pk), reason::bad_field);
    bytes huge_count = b;
    huge_count[3 + 28 + 3] = 0x7f;  // 2^30 changes announced
    EXPECT_EQ(reason_of(frame(kind::transaction, huge_count), &pk), reason::truncated);

    // Length fields that lie about the frame.
    bytes f = m;
    f[5] = 0x40;  // length 1 GiB + something: above the limit
    EXPECT_EQ(reason_of(f, &pk), reason::bad_length);
    bytes padded = m;
    padded.push_back(0);  // one byte more than the length field says
    EXPECT_EQ(reason_of(padded, &pk), reason::bad_length);
    EXPECT_EQ(reason_of(bytes{1, 'T', 10, 0, 0, 0, 0, 0, 0, 0}, &pk), reason::bad_length);  // below the minimum
}

TEST(Protocol, DecoderRejectsDuplicateColumns) {
    bytes b = {1, 'r'};
    bytes fixed(4 + 8 + 8 + 8, 0);
    fixed[4] = 1;
    fixed[12] = 2;
    b.insert(b.end(), fixed.begin(), fixed.end());
    b.insert(b.end(), {1, 0, 0, 0, 'I', 1, 's', 1, 't'});
    b.insert(b.end(), 16, 0);
    b.insert(b.end(), {2, 0, 1, 'c', 0x03, 1, 1, 'c', 0x08, 1});
    EXPECT_EQ(reason_of(frame(kind::transaction, b), &pk_a()), reason::duplicate_column);
}

TEST(Protocol, ErrorsArePostgresStyle) {
    try {
        open(bytes{1, 'T', 0}, key_a().public_key());
        FAIL();
    } catch (const protocol_error &e) {
        EXPECT_STREQ(e.what(), "invalid replication message: truncated");
        EXPECT_STREQ(e.sqlstate(), "08P01");
        EXPECT_EQ(e.reason(), reason::truncated);
        EXPECT_FALSE(e.detail().empty());
    }
}
