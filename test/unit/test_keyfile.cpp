// The signing key file (src/core/keyfile): text format, strict parsing, file mode and owner checks,
// no overwriting.
#include "core/error.hpp"
#include "core/keyfile.hpp"
#include "core/signing.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <fstream>
#include <functional>
#include <string>

#include <sys/stat.h>
#include <unistd.h>

using namespace meridian;

namespace {

signing::secret_key seeded(std::uint8_t first) {
    std::array<std::uint8_t, signing::seed_size> seed{};
    for (std::size_t i = 0; i < seed.size(); i++)
        seed[i] = static_cast<std::uint8_t>(first + i);
    return signing::secret_key::from_seed(seed.data(), seed.size());
}

std::string sqlstate_of(const std::function<void()> &f) {
    try {
        f();
    } catch (const meridian::error &e) {
        return e.sqlstate();
    }
    return "none";
}

// A fresh temporary directory, removed with its contents at the end of the test.
class KeyFileDir : public ::testing::Test {
protected:
    void SetUp() override {
        char tmpl[] = "/tmp/meridian-keyfile-XXXXXX";
        ASSERT_NE(mkdtemp(tmpl), nullptr);
        dir_ = tmpl;
    }
    void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }
    std::string path(const std::string &name) const { return dir_ + "/" + name; }
    static void write_raw(const std::string &p, const std::string &text, mode_t mode) {
        std::ofstream(p, std::ios::binary) << text;
        ASSERT_EQ(chmod(p.c_str(), mode), 0);
    }
    std::string dir_;
};

}  // namespace

TEST(KeyFile, HexIsLowercase) {
    const std::uint8_t b[] = {0x00, 0x0f, 0xa5, 0xff};
    EXPECT_EQ(keyfile::to_hex(b, 4), "000fa5ff");
    EXPECT_EQ(keyfile::to_hex(b, 0), "");
}

TEST(KeyFile, FormatIsHexOfSeedAndPublicKeyAndNewline) {
    signing::secret_key k = seeded(1);
    std::string text = keyfile::format(k);
    ASSERT_EQ(text.size(), keyfile::file_size);
    EXPECT_EQ(text.size(), 129u);
    EXPECT_EQ(text.back(), '\n');
    // Seed 01 02 .. 20 first, then the public key.
    EXPECT_EQ(text.substr(0, 64), "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20");
    signing::public_key pk = k.public_key();
    EXPECT_EQ(text.substr(64, 64), keyfile::to_hex(pk.data(), pk.size()));
    EXPECT_EQ(text.find_first_not_of("0123456789abcdef"), 128u);
}

TEST(KeyFile, ParseRoundTrips) {
    signing::secret_key k = signing::secret_key::generate();
    std::string text = keyfile::format(k);
    signing::secret_key back = keyfile::parse(text.data(), text.size());
    EXPECT_EQ(back.bytes(), k.bytes());
    EXPECT_EQ(back.public_key(), k.public_key());
}

TEST(KeyFile, ParseRefusesWrongLengthAndMissingNewline) {
    std::string text = keyfile::format(seeded(7));
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(text.data(), 0); }), "F0000");
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(text.data(), 128); }), "F0000");      // no newline
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(text.data(), 64); }), "F0000");       // seed only
    std::string longer = text + "\n";
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(longer.data(), longer.size()); }), "F0000");
    std::string crlf = text.substr(0, 127) + "\r\n";                                   // 129 bytes, bad
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(crlf.data(), crlf.size()); }), "F0000");
    std::string no_nl = text;
    no_nl.back() = '0';
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(no_nl.data(), no_nl.size()); }), "F0000");
}

TEST(KeyFile, ParseRefusesUppercaseAndNonHex) {
    std::string text = keyfile::format(seeded(0xa0));  // the seed contains a..f digits
    for (std::size_t i = 0; i < 128; i++) {
        for (char c : {'A', 'F', 'g', ' ', 'x', '\0', '\n'}) {
            std::string bad = text;
            if (bad[i] == c)
                continue;
            bad[i] = c;
            EXPECT_EQ(sqlstate_of([&] { keyfile::parse(bad.data(), bad.size()); }), "F0000") << i << " " << int(c);
        }
    }
    std::string upper = text;
    for (char &c : upper)
        c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(upper.data(), upper.size()); }), "F0000");
}

TEST(KeyFile, ParseRefusesAPublicHalfOfAnotherSeed) {
    std::string a = keyfile::format(seeded(1)), b = keyfile::format(seeded(2));
    std::string mixed = a.substr(0, 64) + b.substr(64);
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(mixed.data(), mixed.size()); }), "F0000");
    // One flipped bit in the public half.
    std::string flipped = a;
    flipped[100] = flipped[100] == '0' ? '1' : '0';
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(flipped.data(), flipped.size()); }), "F0000");
    // One flipped bit in the seed.
    flipped = a;
    flipped[10] = flipped[10] == '0' ? '1' : '0';
    EXPECT_EQ(sqlstate_of([&] { keyfile::parse(flipped.data(), flipped.size()); }), "F0000");
}

TEST(KeyFile, ParseErrorsNeverShowKeyMaterial) {
    std::string text = keyfile::format(seeded(3));
    std::string bad = text;
    bad[127] = 'Z';
    try {
        keyfile::parse(bad.data(), bad.size(), "test");
        FAIL() << "no error";
    } catch (const meridian::error &e) {
        std::string all = std::string(e.what()) + e.detail() + e.hint();
        EXPECT_EQ(all.find(text.substr(0, 16)), std::string::npos);
        EXPECT_EQ(all.find(text.substr(64, 16)), std::string::npos);
        EXPECT_NE(all.find("Byte 127"), std::string::npos) << all;
    }
}

TEST_F(KeyFileDir, WriteNewFileThenReadIt) {
    signing::secret_key k = signing::secret_key::generate();
    std::string p = path("signing.key");
    mode_t old = umask(0);  // a permissive umask must not widen the mode
    keyfile::write_new_file(p, k);
    umask(old);
    struct stat st;
    ASSERT_EQ(stat(p.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_size, 129);
    EXPECT_EQ(st.st_uid, geteuid());
    signing::secret_key back = keyfile::read_file(p);
    EXPECT_EQ(back.bytes(), k.bytes());
}

TEST_F(KeyFileDir, WriteNewFileNeverOverwrites) {
    std::string p = path("signing.key");
    keyfile::write_new_file(p, seeded(1));
    EXPECT_EQ(sqlstate_of([&] { keyfile::write_new_file(p, seeded(2)); }), "58P02");
    EXPECT_EQ(keyfile::read_file(p).bytes(), seeded(1).bytes());
    // A dangling symlink is not followed.
    std::string link = path("link.key");
    ASSERT_EQ(symlink(path("target.key").c_str(), link.c_str()), 0);
    EXPECT_EQ(sqlstate_of([&] { keyfile::write_new_file(link, seeded(2)); }), "58P02");
    EXPECT_NE(access(path("target.key").c_str(), F_OK), 0);
    // A missing directory.
    EXPECT_EQ(sqlstate_of([&] { keyfile::write_new_file(path("no/such.key"), seeded(2)); }), "58030");
}

TEST_F(KeyFileDir, ReadRefusesMissingFileDirectoryAndLooseModes) {
    EXPECT_EQ(sqlstate_of([&] { keyfile::read_file(path("missing.key")); }), "58P01");
    EXPECT_EQ(sqlstate_of([&] { keyfile::read_file(dir_); }), "F0000");
    std::string text = keyfile::format(seeded(5));
    std::string p = path("k");
    for (mode_t mode : {0640, 0604, 0644, 0660, 0606, 0610, 0601, 0700 | 0040}) {
        write_raw(p, text, mode);
        EXPECT_EQ(sqlstate_of([&] { keyfile::read_file(p); }), "F0000") << std::oct << mode;
    }
    for (mode_t mode : {0600, 0400}) {
        write_raw(p, text, mode);
        EXPECT_EQ(keyfile::read_file(p).bytes(), seeded(5).bytes()) << std::oct << mode;
    }
    // 0400 cannot be rewritten by ofstream for a non-root user: start over.
    unlink(p.c_str());
    write_raw(p, text.substr(0, 128), 0600);
    EXPECT_EQ(sqlstate_of([&] { keyfile::read_file(p); }), "F0000");
    unlink(p.c_str());
    write_raw(p, text + "00", 0600);
    EXPECT_EQ(sqlstate_of([&] { keyfile::read_file(p); }), "F0000");
}

TEST_F(KeyFileDir, ReadRefusesAFileOfAnotherOwner) {
    if (geteuid() != 0)
        GTEST_SKIP() << "needs root to chown a file to another user";
    std::string p = path("k");
    write_raw(p, keyfile::format(seeded(9)), 0600);
    ASSERT_EQ(chown(p.c_str(), 65534, 65534), 0);
    EXPECT_EQ(sqlstate_of([&] { keyfile::read_file(p); }), "F0000");
}
