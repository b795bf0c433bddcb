// The signing key file: see keyfile.hpp.
#include "core/keyfile.hpp"

#include "core/error.hpp"

#include <sodium.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace meridian::keyfile {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

// Closes a file descriptor on scope exit.
struct fd_guard {
    int fd;
    ~fd_guard() {
        if (fd >= 0)
            ::close(fd);
    }
};

// Wipes a buffer on scope exit.
template <std::size_t N>
struct wiped_buffer {
    std::array<char, N> data{};
    ~wiped_buffer() { sodium_memzero(data.data(), data.size()); }
};

[[noreturn]] void throw_errno(const char *state, const std::string &what, const std::string &path, int err) {
    throw meridian::error(state, "could not " + what + " signing key file \"" + path + "\": " + std::strerror(err));
}

}  // namespace

std::string to_hex(const std::uint8_t *p, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string s(2 * n, '0');
    for (std::size_t i = 0; i < n; i++) {
        s[2 * i] = digits[p[i] >> 4];
        s[2 * i + 1] = digits[p[i] & 15];
    }
    return s;
}

std::string format(const signing::secret_key &key) {
    std::string s = to_hex(key.bytes().data(), key.bytes().size());
    s.push_back('\n');
    return s;
}

signing::secret_key parse(const char *text, std::size_t len, const std::string &what) {
    const std::string detail = "A key file holds the 64-byte Ed25519 secret key as 128 lowercase hex characters "
                               "followed by a newline, as written by \"meridian-replicator keygen\".";
    if (len != file_size)
        throw meridian::error(state::config_file_error, "invalid signing key in " + what,
                              "The file has " + std::to_string(len) + " bytes, not " + std::to_string(file_size) +
                                  ". " + detail);
    if (text[file_size - 1] != '\n')
        throw meridian::error(state::config_file_error, "invalid signing key in " + what,
                              "The file does not end with a newline. " + detail);
    std::array<std::uint8_t, signing::secret_key_size> raw;
    for (std::size_t i = 0; i < raw.size(); i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            sodium_memzero(raw.data(), raw.size());
            throw meridian::error(state::config_file_error, "invalid signing key in " + what,
                                  "Byte " + std::to_string(hi < 0 ? 2 * i : 2 * i + 1) +
                                      " is not a lowercase hex digit. " + detail);
        }
        raw[i] = static_cast<std::uint8_t>(hi << 4 | lo);
    }
    try {
        signing::secret_key k = signing::secret_key::from_bytes(raw.data(), raw.size());
        sodium_memzero(raw.data(), raw.size());
        return k;
    } catch (const meridian::error &) {
        sodium_memzero(raw.data(), raw.size());
        throw meridian::error(state::config_file_error, "invalid signing key in " + what,
                              "The public half of the key does not belong to its seed: the file is damaged.");
    }
}

signing::secret_key read_file(const std::string &path) {
    fd_guard f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY)};
    if (f.fd < 0) {
        int err = errno;
        if (err == ENOENT)
            throw meridian::error(state::undefined_file,
                                  "signing key file \"" + path + "\" does not exist", {},
                                  "Create one with \"meridian-replicator keygen FILE\" as the server's user.");
        throw_errno(state::io_error, "open", path, err);
    }
    struct stat st;
    if (::fstat(f.fd, &st) != 0)
        throw_errno(state::io_error, "stat", path, errno);
    if (!S_ISREG(st.st_mode))
        throw meridian::error(state::config_file_error, "signing key file \"" + path + "\" is not a regular file");
    if (st.st_uid != ::geteuid())
        throw meridian::error(state::config_file_error,
                              "signing key file \"" + path + "\" is not owned by the current user",
                              "It is owned by uid " + std::to_string(st.st_uid) + "; this process runs as uid " +
                                  std::to_string(::geteuid()) + ".",
                              "chown the file to the user the server runs as.");
    if ((st.st_mode & 077) != 0) {
        char mode[8];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
        throw meridian::error(state::config_file_error,
                              "signing key file \"" + path + "\" has group or world access",
                              std::string("Its mode is ") + mode + "; a signing key file must be 0600 or stricter.",
                              "chmod 600 the file.");
    }
    // One byte more than a valid file, to tell "too long" from "exact".
    wiped_buffer<file_size + 1> buf;
    std::size_t got = 0;
    while (got < buf.data.size()) {
        ssize_t n = ::read(f.fd, buf.data.data() + got, buf.data.size() - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            throw_errno(state::io_error, "read", path, errno);
        }
        if (n == 0)
            break;
        got += static_cast<std::size_t>(n);
    }
    return parse(buf.data.data(), got, "signing key file \"" + path + "\"");
}

void write_new_file(const std::string &path, const signing::secret_key &key) {
    // O_EXCL|O_CREAT never follows a symlink and fails on anything that exists, also a dangling link.
    fd_guard f{::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600)};
    if (f.fd < 0) {
        int err = errno;
        if (err == EEXIST)
            throw meridian::error(state::duplicate_file, "signing key file \"" + path + "\" already exists", {},
                                  "Remove it first if you really mean to replace this region's key.");
        throw_errno(state::io_error, "create", path, err);
    }
    struct file_text {
        std::string s;
        ~file_text() { sodium_memzero(s.data(), s.size()); }
    } text{format(key)};
    try {
        // The umask may have cleared bits only; make sure of 0600 exactly.
        if (::fchmod(f.fd, 0600) != 0)
            throw_errno(state::io_error, "chmod", path, errno);
        std::size_t done = 0;
        while (done < text.s.size()) {
            ssize_t n = ::write(f.fd, text.s.data() + done, text.s.size() - done);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                throw_errno(state::io_error, "write", path, errno);
            }
            done += static_cast<std::size_t>(n);
        }
        if (::fsync(f.fd) != 0)
            throw_errno(state::io_error, "fsync", path, errno);
        int fd = f.fd;
        f.fd = -1;
        if (::close(fd) != 0)
            throw_errno(state::io_error, "close", path, errno);
    } catch (...) {
        ::unlink(path.c_str());
        throw;
    }
}

}  // namespace meridian::keyfile
