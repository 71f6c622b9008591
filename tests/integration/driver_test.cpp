// The real libuv Driver on loopback sockets, in-process: well-behaved and
// hostile peers side by side. Each hostile input gets a clean close and a
// counter, and a well-behaved peer connected all along is still answered.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <deque>
#include <functional>
#include <map>
#include <future>
#include <thread>

#include "http/text.hpp"
#include "integration/gnutella_peer.hpp"
#include "integration/socket_client.hpp"
#include "share/sha1.hpp"
#include "servent/control/control_core.hpp"
#include "servent/download/download_core.hpp"
#include "servent/gnutella/gnutella_core.hpp"
#include "servent/upload/upload_core.hpp"
#include "servent/uv/driver.hpp"
#include "servent/uv/stream_client.hpp"
#include "support/files.hpp"
#include "wire/gnutella/framer.hpp"

namespace fs = std::filesystem;
using namespace sv;
using namespace std::chrono_literals;
namespace gn = sv::wire::gnutella;
using test::SocketClient;
using test::read_descriptor;

namespace {

std::string descriptor(gn::Type t, std::uint8_t ttl, std::uint8_t hops, const wire::Bytes& payload,
                       std::uint8_t id_byte) {
  gn::Header h;
  h.id.bytes.fill(id_byte);
  h.type = static_cast<std::uint8_t>(t);
  h.ttl = ttl;
  h.hops = hops;
  auto b = gn::encode_descriptor(h, payload);
  return std::string(b.begin(), b.end());
}

// Reads descriptors from a client until one of `type` arrives (bounded).
struct Node {
  fs::path dir;
  share::Library lib;
  std::unique_ptr<GnutellaCore> core;
  std::unique_ptr<UploadCore> upload;
  std::unique_ptr<Driver> driver;
  std::uint16_t port = 0;
  std::thread thread;
  int loop_close_rc = -1;

  explicit Node(const std::function<void(GnutellaConfig&, DriverConfig&)>& tweak = {},
                const std::function<void(const fs::path&)>& populate = {}) {
    char t[] = "/tmp/servent-drv-XXXXXX";
    dir = mkdtemp(t);
    std::ofstream(dir / "free software song.ogg") << std::string(100000, 'x') + "end";
    if (populate) populate(dir);
    lib = share::Library({dir.string()}, "");
    lib.rescan();
    GnutellaConfig g;
    g.mode = NodeMode::Ultrapeer;  // relays between the test's peers
    g.handshake_timeout = 2s;
    core = std::make_unique<GnutellaCore>(lib, g, 1234);
    UploadConfig u;
    u.header_timeout = 300ms;  // short so the slowloris case is quick
    upload = std::make_unique<UploadCore>(lib, u);
    DriverConfig d;
    d.handle_signals = false;
    d.sniff_timeout = 300ms;
    if (tweak) {
      tweak(g, d);
      core = std::make_unique<GnutellaCore>(lib, g, 1234);
    }
    driver = std::make_unique<Driver>(d);
    driver->sniff("GNUTELLA CONNECT", *core);
    driver->sniff("GET ", *upload);
    driver->sniff("HEAD ", *upload);
    driver->forward([this] { return core->poll_event(); }, [](const Event&) {});
    port = driver->listen_tcp("127.0.0.1", 0).port;
    core->set_advertised(Endpoint{0x7f000001, port});
    thread = std::thread([this] { loop_close_rc = driver->run(); });
  }
  // Stops the loop; afterwards the counters may be read.
  void stop() {
    if (!thread.joinable()) return;
    driver->request_stop();
    thread.join();
  }
  ~Node() {
    stop();
    fs::remove_all(dir);
  }
};

// A peer that completes the 0.6 handshake as an ultrapeer neighbour.
std::unique_ptr<SocketClient> good_peer(std::uint16_t port) {
  auto c = std::make_unique<SocketClient>(port);
  REQUIRE(c->send("GNUTELLA CONNECT/0.6\r\nUser-Agent: test/1\r\nX-Ultrapeer: True\r\n\r\n"));
  auto resp = c->read_until("\r\n\r\n");
  REQUIRE(resp.starts_with("GNUTELLA/0.6 200"));
  REQUIRE(c->send("GNUTELLA/0.6 200 OK\r\n\r\n"));
  return c;
}

void check_still_serving(SocketClient& peer, std::uint8_t id) {
  REQUIRE(peer.send(descriptor(gn::Type::Ping, 1, 0, {}, id)));
  auto pong = read_descriptor(peer, 0x01);
  REQUIRE(pong);
  CHECK(pong->first.id.bytes[0] == id);
}

}  // namespace

TEST_CASE("servent_over_real_sockets_survives_hostile_peers") {
  Node n;
  auto watcher = good_peer(n.port);  // connected before, during and after
  check_still_serving(*watcher, 1);

  SUBCASE("garbage instead of a handshake") {
    SocketClient bad(n.port);
    bad.send("\x16\x03\x01 this is not gnutella at all\r\n\r\n");
    CHECK(bad.wait_closed());
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.driver->stat(Driver::kSniffUnknown) == 1);
  }
  SUBCASE("broken 0.6 handshake") {
    SocketClient bad(n.port);
    bad.send("GNUTELLA CONNECT/0.6\r\nno colon here\r\n\r\n");
    CHECK(bad.wait_closed());
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.core->stat(GnutellaCore::kCloseHandshakeMalformed) == 1);
  }
  SUBCASE("header announcing a 4 GiB payload") {
    auto bad = good_peer(n.port);
    std::string d = descriptor(gn::Type::Query, 3, 0, {}, 9);
    d[19] = d[20] = d[21] = d[22] = '\xff';
    bad->send(d);
    CHECK(bad->wait_closed());
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.core->stat(GnutellaCore::kClosePayloadTooLarge) == 1);
  }
  SUBCASE("payload shorter than its descriptor needs") {
    auto bad = good_peer(n.port);
    bad->send(descriptor(gn::Type::Pong, 3, 0, wire::Bytes(5, 0), 9));
    CHECK(bad->wait_closed());
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.core->stat(GnutellaCore::kClosePayloadMalformed) == 1);
  }
  SUBCASE("ttl 255 is clamped before it is relayed") {
    auto sender = good_peer(n.port);
    gn::Query q;
    q.min_speed = 0x8000;
    q.criteria = "nothing matches this";
    wire::Bytes p;
    gn::encode_query(p, q);
    sender->send(descriptor(gn::Type::Query, 255, 0, p, 9));
    auto relayed = read_descriptor(*watcher, 0x80);
    REQUIRE(relayed);
    CHECK(relayed->first.ttl == 6);  // clamped to 7, then relayed with TTL-1
    CHECK(relayed->first.hops == 1);
    check_still_serving(*sender, 3);
    n.stop();
    CHECK(n.core->stat(GnutellaCore::kTtlClamped) == 1);
  }
  SUBCASE("query hit for an unknown descriptor id") {
    auto bad = good_peer(n.port);
    gn::QueryHit h;
    h.results.push_back({1, 2, "x", {}});
    wire::Bytes p;
    gn::encode_query_hit(p, h);
    bad->send(descriptor(gn::Type::QueryHit, 5, 0, p, 0x77));
    check_still_serving(*bad, 3);  // dropped, not fatal
    CHECK(read_descriptor(*watcher, 0x81, 200ms) == std::nullopt);
    n.stop();
    CHECK(n.core->stat(GnutellaCore::kDropHitUnroutable) == 1);
  }
  SUBCASE("http request line of 1 MiB") {
    SocketClient bad(n.port);
    bad.send("GET /" + std::string(1 << 20, 'a'));
    auto resp = bad.read_until("\r\n\r\n");
    CHECK(resp.starts_with("HTTP/1.1 414"));
    CHECK(bad.wait_closed());
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.upload->stat(UploadCore::kStatus431) == 1);
  }
  SUBCASE("half-sent http request times out") {
    SocketClient slow(n.port);
    slow.send("GET /get/1/free%20software");
    CHECK(slow.wait_closed(5s));
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.upload->stat(UploadCore::kHeaderTimeouts) == 1);
  }
  SUBCASE("connection that never sends a byte times out") {
    SocketClient idle(n.port);
    CHECK(idle.wait_closed(5s));
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.driver->stat(Driver::kSniffTimeout) == 1);
  }
  n.stop();
  CHECK(n.loop_close_rc == 0);
}

TEST_CASE("http_download_with_range_and_keep_alive_over_loopback") {
  Node n;
  SocketClient c(n.port);
  c.send("GET /get/1/free%20software%20song.ogg HTTP/1.1\r\nRange: bytes=99998-\r\n\r\n");
  auto resp = c.read_until("end");
  CHECK(resp.starts_with("HTTP/1.1 206 Partial Content\r\n"));
  CHECK(resp.find("Content-Range: bytes 99998-100002/100003\r\n") != std::string::npos);
  CHECK(resp.ends_with("\r\n\r\nxxend"));
  c.send("GET /get/1/free%20software%20song.ogg HTTP/1.1\r\n\r\n");
  auto full = c.read_until("end");
  auto body = full.substr(full.find("\r\n\r\n") + 4);
  CHECK(body.size() == 100003);
  c.send("GET /get/1/..%2f..%2fetc%2fpasswd HTTP/1.1\r\n\r\n");
  CHECK(c.read_until("\r\n\r\n").starts_with("HTTP/1.1 400"));
  n.stop();
  CHECK(n.upload->stat(UploadCore::kStatus206) == 1);
  CHECK(n.upload->stat(UploadCore::kStatus200) == 1);
  CHECK(n.upload->stat(UploadCore::kTraversalRejected) == 1);
  CHECK(n.loop_close_rc == 0);
}

TEST_CASE("two_drivers_connect_and_search_over_loopback") {
  Node a;
  share::Library empty;
  GnutellaCore core(empty, GnutellaConfig{}, 99);
  DriverConfig d;
  d.handle_signals = false;
  Driver driver(d);
  driver.add_core(core);
  core.add_peer(Endpoint{0x7f000001, a.port}, driver.now());
  std::vector<event::Hit> hits;
  driver.forward([&] { return core.poll_event(); }, [&](const Event& e) {
    if (std::holds_alternative<event::PeerUp>(e)) core.search(Search{"software song", 3, {}}, driver.now());
    if (auto* h = std::get_if<event::Hit>(&e)) {
      hits.push_back(*h);
      driver.stop();
    }
  });
  driver.after(5s, [&] { driver.stop(); });  // bound, should not be reached
  CHECK(driver.run() == 0);
  REQUIRE(hits.size() == 1);
  CHECK(hits[0].result.name == "free software song.ogg");
  CHECK(hits[0].source == Endpoint{0x7f000001, a.port});
}

namespace {

std::size_t rss_bytes() {
  std::ifstream in("/proc/self/statm");
  std::size_t pages = 0, resident = 0;
  in >> pages >> resident;
  return resident * static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

TEST_CASE("limits_hold_under_floods_and_a_well_behaved_peer_is_still_answered") {
  Node n([](GnutellaConfig& g, DriverConfig& d) {
    g.max_connections = 64;
    d.max_per_ip = 16;
    d.max_write_queue = 64 * 1024;
  });
  auto watcher = good_peer(n.port);
  check_still_serving(*watcher, 1);
  const std::size_t rss_before = rss_bytes();

  SUBCASE("forty connections from one address: sixteen are let in") {
    std::vector<std::unique_ptr<SocketClient>> flood;
    std::size_t accepted = 0;
    for (int i = 0; i < 40; ++i) {
      auto c = std::make_unique<SocketClient>(n.port);
      c->send("GNUTELLA CONNECT/0.6\r\nUser-Agent: flood\r\nX-Ultrapeer: False\r\n\r\n");
      auto resp = c->read_until("\r\n\r\n", 2s);
      if (resp.starts_with("GNUTELLA/0.6 200")) {
        c->send("GNUTELLA/0.6 200 OK\r\n\r\n");
        ++accepted;
      } else {
        CHECK(c->wait_closed(2s));
      }
      flood.push_back(std::move(c));
    }
    CHECK(accepted == 15);  // the watcher is the sixteenth
    check_still_serving(*watcher, 2);
    // Gone ones free their places.
    flood.clear();
    std::unique_ptr<SocketClient> later;
    for (int attempt = 0; attempt < 50 && !later; ++attempt) {
      auto c = std::make_unique<SocketClient>(n.port);
      c->send("GNUTELLA CONNECT/0.6\r\nX-Ultrapeer: False\r\n\r\n");
      if (c->read_until("\r\n\r\n", 1s).starts_with("GNUTELLA/0.6 200")) later = std::move(c);
    }
    CHECK(later);
    n.stop();
    CHECK(n.driver->stat(Driver::kRefusedPerIp) >= 25);
  }
  SUBCASE("a peer flooding queries is held to its rate") {
    auto flooder = good_peer(n.port);
    std::string burst;
    for (std::uint32_t i = 0; i < 3000; ++i) {
      gn::Header h;
      for (int k = 0; k < 4; ++k) h.id.bytes[k] = static_cast<std::uint8_t>(i >> (8 * k));
      h.id.bytes[15] = 0xEE;
      h.type = static_cast<std::uint8_t>(gn::Type::Query);
      h.ttl = 1;
      wire::Bytes p;
      gn::encode_query(p, gn::Query{0x8000, "flood " + std::to_string(i), {}});
      auto d = gn::encode_descriptor(h, p);
      burst.append(d.begin(), d.end());
    }
    REQUIRE(flooder->send(burst));
    check_still_serving(*flooder, 3);  // dropped, not disconnected: pings still answered
    check_still_serving(*watcher, 2);
    n.stop();
    const auto dropped = n.core->stat(GnutellaCore::kDropQueryRate);
    CHECK(dropped >= 2700);  // 3000 - the burst of 200 - what a second refills
    CHECK(dropped <= 2800);
  }
  SUBCASE("a peer that never reads is dropped, not buffered forever") {
    auto sink = good_peer(n.port);
    sink->shrink_receive_buffer();
    // Pings it sends are answered; it reads none of the Pongs: more than the
    // kernel's socket buffers and our write queue hold together.
    std::string pings;
    for (std::uint32_t i = 0; i < 300'000; ++i) {
      gn::Header h;
      for (int k = 0; k < 4; ++k) h.id.bytes[k] = static_cast<std::uint8_t>(i >> (8 * k));
      h.id.bytes[15] = 0xAB;
      h.type = 0x00;
      h.ttl = 1;
      auto d = gn::encode_descriptor(h, {});
      pings.append(d.begin(), d.end());
    }
    sink->send(pings);
    CHECK(sink->wait_closed(10s));
    check_still_serving(*watcher, 2);
    n.stop();
    CHECK(n.driver->stat(Driver::kWriteQueueFull) >= 1);
  }
  // Memory stays bounded whatever was thrown at it (under AddressSanitizer,
  // freed memory waits in its quarantine, 256 MiB by default, before reuse).
#if defined(__SANITIZE_ADDRESS__)
  constexpr std::size_t kQuarantine = 256u * 1024 * 1024;
#else
  constexpr std::size_t kQuarantine = 0;
#endif
  CHECK(rss_bytes() < rss_before + 64 * 1024 * 1024 + kQuarantine);
  n.stop();
  CHECK(n.loop_close_rc == 0);
}

namespace {

std::string http_get(std::uint16_t port, const std::string& target) {
  SocketClient c(port);
  c.send("GET " + target + " HTTP/1.1\r\nConnection: close\r\n\r\n");
  c.wait_closed(5s);
  return c.buffer();
}

std::uint32_t index_of(const share::Library& lib, const std::string& name) {
  for (std::uint32_t i = 1; i < 1000; ++i) {
    if (const auto* f = lib.by_index(i); f && f->name == name) return i;
  }
  return 0;
}

}  // namespace

TEST_CASE("nothing_outside_the_shared_folder_is_readable_by_any_request") {
  const std::string kSecret = "SECRET-CONTENT-OUTSIDE-THE-SHARE";
  fs::path outside;
  Node n({}, [&](const fs::path& share) {
    char t[] = "/tmp/servent-outside-XXXXXX";
    outside = mkdtemp(t);
    std::ofstream(outside / "secret.txt") << kSecret;
    std::ofstream(outside / "three.txt") << kSecret;
    fs::create_directories(share / "sub");
    std::ofstream(share / "song.txt") << std::string(5000, 's');
    std::ofstream(share / "song2.txt") << std::string(5000, 't');
    std::ofstream(share / "sub" / "three.txt") << std::string(5000, 'u');
    fs::create_symlink(outside / "secret.txt", share / "link.txt");  // escapes: never shared
    fs::create_symlink("/dev/zero", share / "zero");                 // a device: never shared
    REQUIRE(::mkfifo((share / "fifo.txt").c_str(), 0600) == 0);      // a FIFO: never shared
  });
  const fs::path share = n.dir;
  CHECK(index_of(n.lib, "link.txt") == 0);
  CHECK(index_of(n.lib, "secret.txt") == 0);
  CHECK(index_of(n.lib, "zero") == 0);
  CHECK(index_of(n.lib, "fifo.txt") == 0);
  const auto song = index_of(n.lib, "song.txt"), song2 = index_of(n.lib, "song2.txt"),
             three = index_of(n.lib, "three.txt");
  REQUIRE(song != 0);
  REQUIRE(song2 != 0);
  REQUIRE(three != 0);
  const std::string outside_enc = http::percent_encode((outside / "secret.txt").string());
  // Every request form, before anything changes on disk.
  const std::string targets[] = {
      "/get/1/../../" + outside_enc,
      "/get/1/..%2f..%2f..%2f..%2fetc%2fpasswd",
      "/get/1/%2e%2e%2f%2e%2e%2fsecret.txt",
      "/" + outside_enc,
      "/get/" + std::to_string(song) + "/..%2fsecret.txt",
      "/get/" + std::to_string(song) + "/link.txt",
      "/get/999/secret.txt",
      "/get/1/link.txt",
      "/get/1/fifo.txt",
      "/get/1/zero",
      "/uri-res/N2R?urn:sha1:" + share::base32_encode(share::sha1_of(kSecret).data(), 20),
      "/get/1/" + std::string(4000, 'a'),
      "/get/1/" + std::string(20000, 'a'),
      "//etc/passwd",
      "/get/4294967297/song.txt",
  };
  for (const auto& t : targets) {
    CAPTURE(t.substr(0, 80));
    const std::string resp = http_get(n.port, t);
    CHECK(resp.starts_with("HTTP/1.1 4"));
    CHECK(resp.find(kSecret) == std::string::npos);
    CHECK(resp.find("root:") == std::string::npos);
  }
  // Swaps after the scan: a hard link to the secret renamed over a shared
  // file, a symlink over another, a directory of the path replaced by a
  // symlink. Each request is refused; nothing of the secret is sent.
  fs::create_hard_link(outside / "secret.txt", outside / "hard");
  fs::rename(outside / "hard", share / "song.txt");
  fs::remove(share / "song2.txt");
  fs::create_symlink(outside / "secret.txt", share / "song2.txt");
  fs::rename(share / "sub", share / "sub.old");
  fs::create_directory_symlink(outside, share / "sub");
  for (const auto& [idx, name] : {std::pair{song, "song.txt"}, std::pair{song2, "song2.txt"}, std::pair{three, "three.txt"}}) {
    CAPTURE(name);
    const std::string resp = http_get(n.port, "/get/" + std::to_string(idx) + "/" + name);
    CHECK(resp.find(kSecret) == std::string::npos);
    CHECK(resp.starts_with("HTTP/1.1 404"));
  }
  // Private state appears in nothing we send: not our folders, not the host name.
  auto peer = good_peer(n.port);
  check_still_serving(*peer, 5);
  gn::Query q;
  q.criteria = "song";
  wire::Bytes p;
  gn::encode_query(p, q);
  peer->send(descriptor(gn::Type::Query, 2, 0, p, 0x42));
  auto hit = read_descriptor(*peer, 0x81);
  REQUIRE(hit);
  std::string all = peer->buffer() + std::string(hit->second.begin(), hit->second.end()) + http_get(n.port, "/get/1/x");
  CHECK(all.find(share.string()) == std::string::npos);
  CHECK(all.find(outside.string()) == std::string::npos);
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  if (std::string_view(host).size() >= 4) CHECK(all.find(host) == std::string::npos);
  n.stop();
  // Each path now names another inode than the scan found (the hard link is
  // a regular file inside the folder by path): the upload core refuses all
  // three before the driver opens anything. The driver's own check of the
  // opened descriptor is tested below (driver_sends_only_the_validated_inode).
  CHECK(n.driver->stat(Driver::kFileSwapped) == 0);
  fs::remove_all(outside);
}

namespace {

// A network the Driver has never heard of: echoes TCP bytes with a prefix,
// answers datagrams, and can start datagrams and connections of its own.
class EchoCore final : public Core {
 public:
  explicit EchoCore(std::string tag) : tag_(std::move(tag)) {}
  void handle_connected(ConnId conn, Endpoint, Direction dir, Instant) override {
    connected.push_back({conn, dir});
    if (dir == Direction::Outbound) send(conn, "hello from " + tag_);
  }
  void handle_bytes(ConnId conn, wire::ByteView bytes, Instant) override {
    received.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    if (close_on_bytes) {
      actions_.push_back(action::Close{conn, CloseReason::Normal, true});
      return;
    }
    if (echo) send(conn, tag_ + ":" + std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  }
  void handle_closed(ConnId conn, CloseReason, Instant) override { closed.push_back(conn); }
  void handle_datagram(SocketId socket, Endpoint from, wire::ByteView bytes, Instant) override {
    std::string text(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    datagrams.push_back(text);
    if (text.starts_with("ping ")) {
      const std::string reply = "pong " + text.substr(5);
      actions_.push_back(action::SendTo{socket, from, std::make_shared<Buffer>(reply.begin(), reply.end())});
    }
  }
  void handle_timeout(Instant) override {}
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override { return std::nullopt; }

  void send(ConnId conn, const std::string& text) {
    actions_.push_back(action::Send{conn, std::make_shared<Buffer>(text.begin(), text.end())});
  }
  void send_to(SocketId s, Endpoint to, const std::string& text) {
    actions_.push_back(action::SendTo{s, to, std::make_shared<Buffer>(text.begin(), text.end())});
  }
  void connect(ConnId id, Endpoint to) { actions_.push_back(action::Connect{id, to}); }

  bool echo = true;
  bool close_on_bytes = false;
  std::vector<std::pair<ConnId, Direction>> connected;
  std::vector<ConnId> closed;
  std::string received;
  std::vector<std::string> datagrams;

 private:
  std::string tag_;
  std::deque<Action> actions_;
};

}  // namespace

TEST_CASE("driver_hosts_any_core_by_sniffing_by_listener_and_over_udp") {
  DriverConfig d;
  d.handle_signals = false;
  Driver driver(d);
  EchoCore sniffed("sniffed"), bound("bound"), udp_a("a"), udp_b("b"), dialer("dialer");
  dialer.echo = false;
  // Registration is all a new network needs: a prefix, a listener, a socket.
  driver.sniff("ECHO ", sniffed);
  const Endpoint shared = driver.listen_tcp("127.0.0.1", 0);
  const Endpoint own = driver.listen_tcp("127.0.0.1", 0, &bound);
  const auto sa = driver.listen_udp("127.0.0.1", 0, udp_a);
  const auto sb = driver.listen_udp("127.0.0.1", 0, udp_b);
  driver.add_core(dialer);
  // UDP: a datagram from a to b, b answers from its own socket; and the
  // dialer's own outgoing connection to the bound listener.
  driver.after(0ms, [&] {
    udp_a.send_to(sa.id, sb.bound, "ping 42");
    dialer.connect(core_conn_id(ConnSpace::NapsterClient, 1), own);
  });
  std::promise<void> both;
  bool done = false;
  driver.add_pump_hook([&] {  // on the loop thread, after every event
    if (!done && !udp_a.datagrams.empty() && dialer.received.find("bound:hello from dialer") != std::string::npos) {
      done = true;
      both.set_value();
    }
    return false;
  });
  int rc = -1;
  std::thread loop([&] { rc = driver.run(); });

  // Sniffed: the first bytes pick the core, and it gets them whole.
  {
    SocketClient c(shared.port);
    REQUIRE(c.send("ECHO one"));
    CHECK(c.read_until("sniffed:ECHO one", 5s).find("sniffed:ECHO one") != std::string::npos);
  }
  // A prefix nobody registered is closed and counted.
  {
    SocketClient c(shared.port);
    REQUIRE(c.send("NOPE"));
    CHECK(c.read_at_least(1, 5s).empty());
  }
  // Bound: no sniffing; any first bytes go to the core.
  {
    SocketClient c(own.port);
    REQUIRE(c.send("\x01\x02 anything"));
    CHECK(c.read_until("bound:", 5s).find("bound:") != std::string::npos);
  }
  const bool arrived = both.get_future().wait_for(5s) == std::future_status::ready;
  driver.request_stop();
  loop.join();
  CHECK(rc == 0);
  CHECK(arrived);
  CHECK(udp_b.datagrams == std::vector<std::string>{"ping 42"});
  CHECK(udp_a.datagrams == std::vector<std::string>{"pong 42"});
  CHECK(dialer.received.find("bound:hello from dialer") != std::string::npos);
  REQUIRE(!dialer.connected.empty());
  CHECK(dialer.connected[0].second == Direction::Outbound);
  CHECK(driver.stat(Driver::kSniffUnknown) == 1);
  CHECK(driver.stat(Driver::kDatagramsIn) == 2);
  CHECK(driver.stat(Driver::kDatagramsOut) == 2);
  CHECK(sniffed.closed.size() == 1);
}

namespace {

// Streams one file to whoever connects, and keeps the progress it is told.
class FileCore final : public Core {
 public:
  FileCore(std::string path, std::uint64_t size, std::uint64_t dev = 0, std::uint64_t ino = 0)
      : path_(std::move(path)), size_(size), dev_(dev), ino_(ino) {}
  void handle_connected(ConnId conn, Endpoint, Direction, Instant) override {
    actions_.push_back(action::SendFile{conn, path_, 0, size_, dev_, ino_});
  }
  void handle_bytes(ConnId, wire::ByteView, Instant) override {}
  void handle_closed(ConnId, CloseReason, Instant) override {}
  void handle_send_progress(ConnId, std::uint64_t bytes, Instant) override { progress.push_back(bytes); }
  void handle_send_done(ConnId conn, bool ok, Instant) override {
    done_ok = ok;
    actions_.push_back(action::Close{conn, CloseReason::Normal, true});
  }
  void handle_timeout(Instant) override {}
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override { return std::nullopt; }
  std::vector<std::uint64_t> progress;
  bool done_ok = false;

 private:
  std::string path_;
  std::uint64_t size_, dev_, ino_;
  std::deque<Action> actions_;
};

}  // namespace

TEST_CASE("driver_tells_a_core_how_far_a_file_send_has_got") {
  char t[] = "/tmp/servent-drv-file-XXXXXX";
  const fs::path dir = mkdtemp(t);
  const std::uint64_t size = 40 * 1024 * 1024 + 17;  // more than one sendfile call (16 MiB each)
  std::ofstream(dir / "big.bin", std::ios::binary) << std::string(size, 'z');
  FileCore core((dir / "big.bin").string(), size);
  DriverConfig d;
  d.handle_signals = false;
  Driver driver(d);
  const Endpoint at = driver.listen_tcp("127.0.0.1", 0, &core);
  int rc = -1;
  std::thread loop([&] { rc = driver.run(); });
  {
    SocketClient c(at.port);
    CHECK(c.read_at_least(size, 10s).size() == size);
    CHECK(c.wait_closed(5s));
  }
  driver.request_stop();
  loop.join();
  CHECK(rc == 0);
  CHECK(core.done_ok);
  REQUIRE(core.progress.size() >= 2);  // several chunks, each reported
  CHECK(std::is_sorted(core.progress.begin(), core.progress.end()));
  CHECK(core.progress.back() == size);
  fs::remove_all(dir);
}

namespace {

// Sends a file in 16 KiB blocks, the next one on each send-done (as a
// BitTorrent seeder answers a long queue of requests).
class BlockCore final : public Core {
 public:
  BlockCore(std::string path, std::uint64_t size) : path_(std::move(path)), size_(size) {}
  void handle_connected(ConnId conn, Endpoint, Direction, Instant) override { next(conn); }
  void handle_bytes(ConnId, wire::ByteView, Instant) override {}
  void handle_closed(ConnId, CloseReason reason, Instant) override { closed = reason; }
  void handle_send_done(ConnId conn, bool ok, Instant) override {
    ok_all = ok_all && ok;
    next(conn);
  }
  void handle_timeout(Instant) override {}
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override { return std::nullopt; }
  std::optional<CloseReason> closed;
  bool ok_all = true;

 private:
  void next(ConnId conn) {
    if (at_ == size_) {
      actions_.push_back(action::Close{conn, CloseReason::Normal, true});
      return;
    }
    const std::uint64_t n = std::min<std::uint64_t>(16 * 1024, size_ - at_);
    actions_.push_back(action::SendFile{conn, path_, at_, n, 0, 0});
    at_ += n;
  }
  std::string path_;
  std::uint64_t size_, at_ = 0;
  std::deque<Action> actions_;
};

}  // namespace

// Blocks served from the page cache are queued at once; their send-done must
// wait for the socket to drain, or a core answering on send-done fills the
// write queue past its cap (and the Driver drops the reader it serves).
TEST_CASE("driver_holds_back_a_cached_file_send_done_until_the_socket_drains") {
  test::TempDir dir("servent-drv-blocks");
  const std::uint64_t size = 24 * 1024 * 1024;  // six times the write-queue cap
  const auto path = dir.path / "blocks.bin";
  std::ofstream(path, std::ios::binary) << test::random_bytes(size, 7);
  BlockCore core(path.string(), size);
  DriverConfig d;
  d.handle_signals = false;
  d.max_write_queue = 4 * 1024 * 1024;
  Driver driver(d);
  const Endpoint at = driver.listen_tcp("127.0.0.1", 0, &core);
  int rc = -1;
  std::thread loop([&] { rc = driver.run(); });
  {
    SocketClient c(at.port);
    const std::string got = c.read_at_least(size, 20s);
    CHECK(got.size() == size);
    CHECK(got == test::random_bytes(size, 7));
    CHECK(c.wait_closed(5s));
  }
  driver.request_stop();
  loop.join();
  CHECK(rc == 0);
  CHECK(core.ok_all);
  CHECK(driver.stat(Driver::kWriteQueueFull) == 0);
  CHECK(driver.stat(Driver::kFileBytesSent) == size);
  REQUIRE(core.closed.has_value());
  CHECK(*core.closed == CloseReason::Normal);
}

TEST_CASE("driver_sends_only_the_validated_inode_small_from_the_page_cache_or_large_from_the_pool") {
  test::TempDir dir("servent-drv-inode");
  struct Case {
    const char* what;
    std::uint64_t size;
  };
  for (const Case& k : {Case{"small, read on the loop", 4096}, Case{"large, read in the pool", 300 * 1024}}) {
    CAPTURE(k.what);
    const auto good = dir.path / "good.bin", other = dir.path / "other.bin";
    std::ofstream(good, std::ios::binary) << test::random_bytes(k.size, 1);
    std::ofstream(other, std::ios::binary) << test::random_bytes(k.size, 2);
    struct stat st {};
    REQUIRE(::stat(good.c_str(), &st) == 0);
    const auto dev = static_cast<std::uint64_t>(st.st_dev), ino = static_cast<std::uint64_t>(st.st_ino);
    DriverConfig d;
    d.handle_signals = false;
    Driver driver(d);
    // The same path, validated once as `good`: served twice (the second
    // time from the open-file cache when small), then `other` is renamed
    // over it: the next send carries nothing of it.
    FileCore core(good.string(), k.size, dev, ino);
    const Endpoint at = driver.listen_tcp("127.0.0.1", 0, &core);
    int rc = -1;
    std::thread loop([&] { rc = driver.run(); });
    for (int i = 0; i < 2; ++i) {
      SocketClient c(at.port);
      CHECK(c.read_at_least(k.size, 10s) == test::random_bytes(k.size, 1));
      CHECK(c.wait_closed(5s));
    }
    fs::rename(other, good);
    const bool small = k.size <= 64 * 1024;
    {
      SocketClient c(at.port);
      const std::string got = c.read_at_least(k.size, 5s);
      CHECK(got.find(test::random_bytes(64, 2)) == std::string::npos);  // never the file swapped in
      // Small: the validated inode itself, still open in the cache; large:
      // the path is opened again, it is another inode, refused.
      if (small) CHECK(got == test::random_bytes(k.size, 1));
      CHECK(c.wait_closed(5s));
    }
    driver.request_stop();
    loop.join();
    CHECK(rc == 0);
    CHECK(core.done_ok == small);
    CHECK(driver.stat(Driver::kFileBytesSent) == (small ? 3 : 2) * k.size);
    CHECK(driver.stat(Driver::kFileSwapped) == (small ? 0 : 1));
  }
}

TEST_CASE("stream_client_runs_straight_line_clients_on_a_driver_over_tcp_and_unix") {
  DriverConfig d;
  d.handle_signals = false;
  Driver server(d);
  EchoCore tcp_core("tcp"), unix_core("unix"), closer("closer");
  closer.close_on_bytes = true;
  const Endpoint at = server.listen_tcp("127.0.0.1", 0, &tcp_core);
  const Endpoint closing = server.listen_tcp("127.0.0.1", 0, &closer);
  test::TempDir dir("stream-client");
  const std::string path = (dir.path / "echo.sock").string();
  server.listen_unix(path, unix_core);
  int rc = -1;
  std::thread loop([&] { rc = server.run(); });

  auto text = [](const wire::Bytes& b) { return std::string(b.begin(), b.end()); };
  auto bytes = [](std::string_view s) { return wire::ByteView(reinterpret_cast<const std::uint8_t*>(s.data()), s.size()); };
  {
    StreamClient c;
    REQUIRE(c.connect(at, 5s));
    REQUIRE(c.send(bytes("one")));
    CHECK(c.read_until([&](wire::Bytes& in) { return text(in) == "tcp:one"; }, 5s));
    c.received().clear();
    // A second exchange on the same connection, and what the peer sends is
    // kept until the caller consumes it.
    REQUIRE(c.send(bytes("two")));
    CHECK(c.read_until([&](wire::Bytes& in) { return text(in) == "tcp:two"; }, 5s));
    CHECK(c.driver().stat(Driver::kConnectsOk) == 1);
    CHECK(c.driver().stat(Driver::kBytesOut) == 6);
  }
  {
    StreamClient c;
    REQUIRE(c.connect_unix(path, 5s));
    REQUIRE(c.send(bytes("three")));
    CHECK(c.read_until([&](wire::Bytes& in) { return text(in) == "unix:three"; }, 5s));
  }
  {
    // Nobody there: a clear error at once, counted by the client's driver.
    StreamClient c;
    CHECK_FALSE(c.connect_unix((dir.path / "nobody.sock").string(), 5s));
    CHECK(c.error().find("cannot connect") != std::string::npos);
    CHECK(c.closed());
    CHECK(c.driver().stat(Driver::kConnectsFailed) == 1);
    CHECK_FALSE(c.send(bytes("lost")));
  }
  {
    // The peer closes: read_until returns at once, not at its deadline.
    StreamClient c;
    REQUIRE(c.connect(closing, 5s));
    REQUIRE(c.send(bytes("close me")));
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(c.read_until([](wire::Bytes&) { return false; }, 20s));
    CHECK(std::chrono::steady_clock::now() - start < 15s);
    CHECK(c.closed());
    CHECK(c.close_reason() == CloseReason::PeerClosed);
  }
  server.request_stop();
  loop.join();
  CHECK(rc == 0);
}

namespace {

// Asks for file jobs on its first timeout and keeps their results.
class JobCore final : public Core {
 public:
  explicit JobCore(std::vector<action::FileJob> jobs) : jobs_(std::move(jobs)) {}
  void handle_connected(ConnId, Endpoint, Direction, Instant) override {}
  void handle_bytes(ConnId, wire::ByteView, Instant) override {}
  void handle_closed(ConnId, CloseReason, Instant) override {}
  void handle_timeout(Instant) override {
    if (started_) return;
    started_ = true;
    for (auto& j : jobs_) actions_.push_back(j);
  }
  void handle_file_done(JobId job, const FileResult& r, Instant) override {
    results[job.value] = r;
    if (results.size() == jobs_.size()) all_done.set_value();
  }
  std::optional<Action> poll_action() override { return take_front(actions_); }
  std::optional<Instant> poll_timeout() const override {
    return started_ ? std::nullopt : std::optional<Instant>(Instant{});
  }
  std::map<std::uint64_t, FileResult> results;
  std::promise<void> all_done;

 private:
  std::vector<action::FileJob> jobs_;
  bool started_ = false;
  std::deque<Action> actions_;
};

share::Sha1 sha1_of(std::string_view s) {
  share::Sha1Hasher h;
  h.update(s.data(), s.size());
  return h.finish();
}

}  // namespace

TEST_CASE("driver_runs_file_jobs_on_the_pool_writing_only_data_that_hashes_right") {
  test::TempDir dir("servent-drv-jobs");
  const std::string a = (dir.path / "a").string(), b = (dir.path / "b").string(), c = (dir.path / "c").string();
  std::ofstream(b) << "...";  // b exists: the write lands at offset 3
  fs::create_symlink(dir.path / "elsewhere", dir.path / "link");
  auto data = [](std::string_view s) { return std::make_shared<const Buffer>(s.begin(), s.end()); };
  using Op = action::FileJob::Op;
  const std::vector<action::FileJob> jobs{
      {JobId{1}, Op::Write, {{a, 0, 5}, {b, 3, 6}}, data("hello world"), sha1_of("hello world")},
      {JobId{2}, Op::Write, {{c, 0, 5}}, data("wrong"), sha1_of("right")},
      {JobId{3}, Op::Write, {{(dir.path / "link").string(), 0, 2}}, data("no"), std::nullopt},
      {JobId{4}, Op::Write, {{a, 0, 5}}, data("six bytes"), std::nullopt},  // ranges do not add up
  };
  JobCore core(jobs);
  DriverConfig d;
  d.handle_signals = false;
  Driver driver(d);
  driver.add_core(core);
  auto done = core.all_done.get_future();
  int rc = -1;
  std::thread loop([&] { rc = driver.run(); });
  const bool finished = done.wait_for(10s) == std::future_status::ready;
  driver.request_stop();
  loop.join();
  REQUIRE(finished);
  CHECK(rc == 0);
  CHECK(core.results[1].ok);
  CHECK(core.results[1].sha1 == sha1_of("hello world"));
  CHECK(test::read_file(dir.path / "a") == "hello");
  CHECK(test::read_file(dir.path / "b") == "... world");
  CHECK_FALSE(core.results[2].ok);
  CHECK_FALSE(core.results[2].hash_matched);
  CHECK_FALSE(fs::exists(dir.path / "c"));  // a bad piece never touches the disk
  CHECK_FALSE(core.results[3].ok);           // O_NOFOLLOW
  CHECK_FALSE(fs::exists(dir.path / "elsewhere"));
  CHECK_FALSE(core.results[4].ok);
  CHECK(driver.stat(Driver::kFileJobs) == 4);
  CHECK(driver.stat(Driver::kFileJobErrors) == 3);

  // Hash jobs: the ranges read back in order; a range past the end fails.
  const std::vector<action::FileJob> hashes{
      {JobId{5}, Op::Hash, {{a, 0, 5}, {b, 3, 6}}, nullptr, std::nullopt},
      {JobId{6}, Op::Hash, {{a, 0, 50}}, nullptr, std::nullopt},
  };
  JobCore hasher(hashes);
  Driver driver2(d);
  driver2.add_core(hasher);
  auto done2 = hasher.all_done.get_future();
  std::thread loop2([&] { rc = driver2.run(); });
  const bool finished2 = done2.wait_for(10s) == std::future_status::ready;
  driver2.request_stop();
  loop2.join();
  REQUIRE(finished2);
  CHECK(hasher.results[5].ok);
  CHECK(hasher.results[5].sha1 == sha1_of("hello world"));
  CHECK_FALSE(hasher.results[6].ok);
}
