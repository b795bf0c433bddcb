// wan-proxy: a simulated WAN for the multi-region tests (test code only; the product never uses
// it). Each named link listens on a loopback port and forwards every TCP connection it accepts to
// a target, delaying the bytes of both directions by the link's one-way delay. A link can be cut
// (its connections dropped, new ones refused), held (connections stay open but nothing moves: a
// link that silently stops delivering), and restored. Controlled over a line protocol on a
// loopback control port:
//
//   wan-proxy --control PORT --link NAME=LISTEN_PORT:TARGET_PORT[:DELAY_MS] ...
//
//   delay NAME MS    set the one-way delay (bytes already queued keep their delivery time)
//   cut NAME         close the link's connections and its listening socket (connects are refused)
//   hold NAME        stop moving bytes on the link; its sockets stay open
//   restore NAME     listen again / move bytes again; bytes that waited through a hold take the
//                    link's delay from the restore, as after any outage
//   status NAME      "ok <state> <delay_ms> <open connections>"
//   lateness         "ok <chunks> <p50_us> <p99_us> <max_us>": how late chunks were written after
//                    their due time, since the last `lateness` (the simulation's own error: on a
//                    busy machine the proxy waits for a core like everything else)
// Every command is answered with one line: "ok ..." or "error ...".
// Single-threaded: one poll() loop over every socket, deliveries ordered per direction.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct chunk {
    clock_type::time_point due;
    std::string bytes;  // empty: the sender closed its side (forward the EOF)
    bool timed = false; // its lateness is counted (once, at the first attempt to write it)
};

// One direction of a proxied connection.
struct direction {
    int from = -1, to = -1;
    std::deque<chunk> queue;
    std::size_t written = 0;  // of queue.front()
    bool from_closed = false, eof_sent = false, broken = false;
    clock_type::time_point last_due{};
};

struct proxy_link;
struct connection {
    proxy_link *owner;
    direction up, down;  // client -> target, target -> client
};

struct proxy_link {
    std::string name;
    int listen_port = 0, target_port = 0;
    int delay_ms = 0;
    enum class state { open, held, cut } st = state::open;
    clock_type::time_point restored{};  // when a hold last ended
    int listen_fd = -1;
    std::vector<std::unique_ptr<connection>> conns;
};

std::map<std::string, std::unique_ptr<proxy_link>> links;

// Delivery lateness, 10 us buckets up to 100 ms (the last bucket holds everything later).
struct lateness_histogram {
    static constexpr std::size_t buckets = 10001;
    std::vector<std::uint64_t> count = std::vector<std::uint64_t>(buckets);
    std::uint64_t total = 0, max_us = 0;
    void add(clock_type::duration late) {
        auto us = static_cast<std::uint64_t>(std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::microseconds>(late).count()));
        count[std::min<std::size_t>(us / 10, buckets - 1)]++;
        total++;
        max_us = std::max(max_us, us);
    }
    std::uint64_t percentile_us(double p) const {
        auto rank = static_cast<std::uint64_t>(std::ceil(p / 100.0 * static_cast<double>(total)));
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < buckets; i++)
            if ((seen += count[i]) >= rank && rank > 0)
                return i * 10;
        return 0;
    }
    std::string take() {
        std::string out = "ok " + std::to_string(total) + " " + std::to_string(percentile_us(50)) + " " +
                          std::to_string(percentile_us(99)) + " " + std::to_string(max_us);
        *this = lateness_histogram();
        return out;
    }
} lateness;

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The kernel stamps each read with when its bytes arrived, so a link's delay counts from the
// arrival, not from when this single-threaded loop got to the socket (a late read would otherwise
// add to the round trip, as a busy core does not on a real link).
void stamp_arrivals(int fd) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
}

// Reads like read(2); `arrived` is when the bytes reached the socket (now if the kernel did not say).
ssize_t read_stamped(int fd, char *buf, std::size_t size, clock_type::time_point &arrived) {
    iovec iov{buf, size};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &m, 0);
    arrived = clock_type::now();
    for (cmsghdr *c = CMSG_FIRSTHDR(&m); n > 0 && c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
            timespec ts, wall;
            std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
            clock_gettime(CLOCK_REALTIME, &wall);
            auto ago = std::chrono::seconds(wall.tv_sec - ts.tv_sec) + std::chrono::nanoseconds(wall.tv_nsec - ts.tv_nsec);
            if (ago > clock_type::duration::zero() && ago < std::chrono::seconds(1))
                arrived -= std::chrono::duration_cast<clock_type::duration>(ago);
        }
    return n;
}

int listen_on(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0 || listen(fd, 64) != 0) {
        std::fprintf(stderr, "wan-proxy: cannot listen on 127.0.0.1:%d: %s\n", port, std::strerror(errno));
        close(fd);
        return -1;
    }
    set_nonblocking(fd);
    return fd;
}

int connect_to(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    stamp_arrivals(fd);
    set_nonblocking(fd);
    return fd;
}

void close_connection(connection &c) {
    if (c.up.from >= 0)
        close(c.up.from);
    if (c.down.from >= 0)
        close(c.down.from);
    c.up.from = c.up.to = c.down.from = c.down.to = -1;
}

void cut(proxy_link &l) {
    for (auto &c : l.conns)
        close_connection(*c);
    l.conns.clear();
    if (l.listen_fd >= 0)
        close(l.listen_fd);
    l.listen_fd = -1;
    l.st = proxy_link::state::cut;
}

std::string command(const std::string &line) {
    std::istringstream in(line);
    std::string verb, name;
    in >> verb >> name;
    if (verb == "lateness")
        return lateness.take();
    auto it = links.find(name);
    if (it == links.end())
        return "error unknown link \"" + name + "\"";
    proxy_link &l = *it->second;
    if (verb == "delay") {
        int ms = -1;
        in >> ms;
        if (ms < 0)
            return "error delay needs milliseconds";
        l.delay_ms = ms;
    } else if (verb == "cut") {
        cut(l);
    } else if (verb == "hold") {
        if (l.st == proxy_link::state::cut)
            return "error link is cut";
        l.st = proxy_link::state::held;
    } else if (verb == "restore") {
        if (l.st == proxy_link::state::cut) {
            l.listen_fd = listen_on(l.listen_port);
            if (l.listen_fd < 0)
                return "error cannot listen again";
        }
        if (l.st == proxy_link::state::held)
            l.restored = clock_type::now();
        l.st = proxy_link::state::open;
    } else if (verb != "status") {
        return "error unknown command \"" + verb + "\"";
    }
    const char *s = l.st == proxy_link::state::open ? "open" : l.st == proxy_link::state::held ? "held" : "cut";
    return "ok " + std::string(s) + " " + std::to_string(l.delay_ms) + " " + std::to_string(l.conns.size());
}

// Reads what is there into the queue, each read due `delay_ms` after its bytes arrived (or after
// `not_before`, the end of a hold they waited through); false when the connection is finished
// with an error.
bool pump_in(direction &d, int delay_ms, clock_type::time_point not_before) {
    char buf[65536];
    for (;;) {
        clock_type::time_point arrived;
        ssize_t n = read_stamped(d.from, buf, sizeof buf, arrived);
        if (n > 0) {
            auto due = std::max(std::max(arrived, not_before) + std::chrono::milliseconds(delay_ms), d.last_due);
            d.last_due = due;
            d.queue.push_back({due, std::string(buf, static_cast<std::size_t>(n))});
            continue;
        }
        if (n == 0) {
            d.from_closed = true;
            auto due = std::max(clock_type::now() + std::chrono::milliseconds(delay_ms), d.last_due);
            d.queue.push_back({due, std::string()});
            return true;
        }
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
}

// Writes what is due; false on a write error.
bool pump_out(direction &d) {
    auto now = clock_type::now();
    while (!d.queue.empty() && d.queue.front().due <= now) {
        chunk &c = d.queue.front();
        if (!c.timed) {
            lateness.add(now - c.due);
            c.timed = true;
        }
        if (c.bytes.empty()) {
            shutdown(d.to, SHUT_WR);
            d.eof_sent = true;
            d.queue.pop_front();
            continue;
        }
        ssize_t n = write(d.to, c.bytes.data() + d.written, c.bytes.size() - d.written);
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
        d.written += static_cast<std::size_t>(n);
        if (d.written < c.bytes.size())
            return true;
        d.written = 0;
        d.queue.pop_front();
    }
    return true;
}

volatile sig_atomic_t stopping = 0;
extern "C" void on_signal(int) { stopping = 1; }

}  // namespace

int main(int argc, char **argv) {
    int control_port = 0;
    for (int i = 1; i < argc; i++) {
        std::string a = argv[i];
        if (a == "--control" && i + 1 < argc) {
            control_port = std::atoi(argv[++i]);
        } else if (a == "--link" && i + 1 < argc) {
            std::string v = argv[++i];
            auto eq = v.find('=');
            auto l = std::make_unique<proxy_link>();
            l->name = v.substr(0, eq);
            if (eq == std::string::npos ||
                std::sscanf(v.c_str() + eq + 1, "%d:%d:%d", &l->listen_port, &l->target_port, &l->delay_ms) < 2) {
                std::fprintf(stderr, "wan-proxy: bad --link \"%s\" (NAME=LISTEN_PORT:TARGET_PORT[:DELAY_MS])\n", v.c_str());
                return 2;
            }
            links[l->name] = std::move(l);
        } else {
            std::fprintf(stderr, "usage: wan-proxy --control PORT --link NAME=LISTEN_PORT:TARGET_PORT[:DELAY_MS] ...\n");
            return 2;
        }
    }
    if (control_port == 0 || links.empty()) {
        std::fprintf(stderr, "usage: wan-proxy --control PORT --link NAME=LISTEN_PORT:TARGET_PORT[:DELAY_MS] ...\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    int control_fd = listen_on(control_port);
    if (control_fd < 0)
        return 1;
    for (auto &[name, l] : links)
        if ((l->listen_fd = listen_on(l->listen_port)) < 0)
            return 1;
    std::fprintf(stderr, "wan-proxy: ready, control on 127.0.0.1:%d, %zu link(s)\n", control_port, links.size());
    std::map<int, std::string> control_clients;  // fd -> partial line

    while (!stopping) {
        std::vector<pollfd> fds;
        std::vector<std::pair<direction *, proxy_link *>> readers;  // parallel to fds after the fixed ones
        fds.push_back({control_fd, POLLIN, 0});
        for (auto &[fd, _] : control_clients)
            fds.push_back({fd, POLLIN, 0});
        std::size_t fixed = fds.size();
        std::vector<proxy_link *> listeners;
        for (auto &[name, l] : links)
            if (l->listen_fd >= 0) {
                fds.push_back({l->listen_fd, POLLIN, 0});
                listeners.push_back(l.get());
            }
        std::size_t conn_base = fds.size();
        auto next_due = clock_type::now() + std::chrono::milliseconds(100);
        for (auto &[name, l] : links)
            for (auto &c : l->conns)
                for (direction *d : {&c->up, &c->down}) {
                    short ev = 0;
                    if (!d->from_closed && l->st == proxy_link::state::open)
                        ev |= POLLIN;
                    if (l->st == proxy_link::state::open && !d->queue.empty())
                        next_due = std::min(next_due, d->queue.front().due);
                    fds.push_back({d->from, ev, 0});
                    readers.push_back({d, l.get()});
                }
        // Wake when the next chunk is due, to the microsecond: a millisecond-rounded poll timeout
        // delivered bytes up to 1-2 ms late, which a link's round trip then counted twice.
        auto wait_ns = std::max<std::int64_t>(
            0, std::chrono::duration_cast<std::chrono::nanoseconds>(next_due - clock_type::now()).count());
        timespec timeout{static_cast<time_t>(wait_ns / 1000000000), static_cast<long>(wait_ns % 1000000000)};
        if (ppoll(fds.data(), fds.size(), &timeout, nullptr) < 0 && errno != EINTR)
            break;

        // Control commands.
        if (fds[0].revents & POLLIN) {
            int c = accept(control_fd, nullptr, nullptr);
            if (c >= 0)
                control_clients[c] = "";
        }
        for (std::size_t i = 1; i < fixed; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            int fd = fds[i].fd;
            char buf[1024];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0) {
                close(fd);
                control_clients.erase(fd);
                continue;
            }
            std::string &pending = control_clients[fd];
            pending.append(buf, static_cast<std::size_t>(n));
            std::size_t nl;
            while ((nl = pending.find('\n')) != std::string::npos) {
                std::string reply = command(pending.substr(0, nl)) + "\n";
                pending.erase(0, nl + 1);
                if (write(fd, reply.data(), reply.size()) < 0)
                    break;
            }
        }
        // New connections.
        for (std::size_t i = 0; i < listeners.size(); i++) {
            if (!(fds[fixed + i].revents & POLLIN))
                continue;
            proxy_link *l = listeners[i];
            int c = accept(l->listen_fd, nullptr, nullptr);
            if (c < 0)
                continue;
            int t = connect_to(l->target_port);
            if (t < 0) {
                close(c);
                continue;
            }
            int one = 1;
            setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            stamp_arrivals(c);
            set_nonblocking(c);
            auto conn = std::make_unique<connection>();
            conn->owner = l;
            conn->up.from = c;
            conn->up.to = t;
            conn->down.from = t;
            conn->down.to = c;
            l->conns.push_back(std::move(conn));
        }
        // Bytes.
        for (std::size_t i = 0; i < readers.size(); i++) {
            auto [d, l] = readers[i];
            if (l->st != proxy_link::state::open || d->from < 0)
                continue;
            if (fds[conn_base + i].revents & (POLLIN | POLLHUP | POLLERR))
                if (!pump_in(*d, l->delay_ms, l->restored))
                    d->broken = true;  // reset by the peer: drop the whole connection
        }
        for (auto &[name, l] : links) {
            if (l->st != proxy_link::state::open)
                continue;
            for (auto &c : l->conns) {
                bool ok = !c->up.broken && !c->down.broken && pump_out(c->up) && pump_out(c->down);
                bool done = c->up.eof_sent && c->down.eof_sent;
                if (!ok || done)
                    close_connection(*c);
            }
            l->conns.erase(std::remove_if(l->conns.begin(), l->conns.end(),
                                          [](const std::unique_ptr<connection> &c) { return c->up.from < 0; }),
                           l->conns.end());
        }
    }
    return 0;
}
