#include "servent/cli/dht_glue.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "servent/cli/args.hpp"
#include "servent/cli/common.hpp"

namespace sv::cli {

std::string dht_source_value(std::string_view network, Endpoint at) { return fmt::format("{} {}", network, at.to_string()); }

std::optional<Endpoint> parse_dht_source(std::string_view value, std::string_view network) {
  if (value.size() <= network.size() + 1 || value.substr(0, network.size()) != network || value[network.size()] != ' ') {
    return std::nullopt;
  }
  auto ep = Endpoint::parse(value.substr(network.size() + 1));
  if (!ep || ep->ip == 0 || ep->port == 0) return std::nullopt;
  return ep;
}

namespace {
constexpr Duration kRepublish = 20min;  // (values live an hour)
constexpr Duration kTick = 5s;
}  // namespace

DhtOps::DhtOps(Driver& driver, dht::DhtCore& node) : node_(node) {
  driver.forward([this] { return node_.poll_result(); },
                 [this](const dht::OpResult& r) {
                   auto it = waiting_.find(r.op);
                   if (it == waiting_.end()) return;
                   auto done = std::move(it->second);
                   waiting_.erase(it);
                   done(r);
                 });
}

DhtPublisher::DhtPublisher(Driver& driver, DhtOps& ops, What what) : driver_(driver), ops_(ops), what_(std::move(what)) {
  driver_.after(kTick, [this] { tick(); });
}

void DhtPublisher::tick() {
  const Instant now = driver_.now();
  dht::DhtCore& node = ops_.node();
  if (node.joined()) {
    for (auto& pair : what_()) {
      auto it = last_.find(pair);
      if (it != last_.end() && now - it->second < kRepublish) continue;
      const auto& [key, value] = pair;
      const std::uint64_t op = node.put(dht::key_id(key, node.ring()), wire::Bytes(value.begin(), value.end()), now, 1h);
      ops_.on(op, [this](const dht::OpResult& r) { ++(r.ok ? published_ : failed_); });
      last_[pair] = now;
    }
  }
  driver_.after(kTick, [this] { tick(); });
}

DhtSourceLookup::DhtSourceLookup(Driver& driver, const std::string& overlay, const dht::DhtOptions& options, Endpoint via)
    : driver_(driver), core_(dht::make_overlay(overlay, options, random_seed())), via_(via) {
  const auto sock = driver_.listen_udp(via.ip == 0x7f000001 ? "127.0.0.1" : "0.0.0.0", 0, *core_);
  core_->bind(sock.id, sock.bound);
  driver_.forward([this] { return core_->poll_result(); },
                  [this](const dht::OpResult& r) {
                    for (const auto& v : r.values) {
                      const std::string text(v.begin(), v.end());
                      auto ep = parse_dht_source(text, network_);
                      if (!ep || std::find(seen_.begin(), seen_.end(), *ep) != seen_.end()) continue;
                      seen_.push_back(*ep);
                      found_(*ep);
                    }
                  });
}

void DhtSourceLookup::find(std::string key, std::string network, std::function<void(Endpoint)> found, Duration again) {
  key_ = std::move(key);
  network_ = std::move(network);
  found_ = std::move(found);
  again_ = again;
  ask();
}

void DhtSourceLookup::ask() {
  core_->get(dht::key_id(key_, core_->ring()), driver_.now(), via_);
  driver_.after(again_, [this] { ask(); });
}

DhtLookupOptions dht_lookup_options(const Args& a) {
  DhtLookupOptions o;
  if (auto v = a.last("--dht")) o.via = parse_endpoint(*v, "--dht");
  if (auto v = a.last("--dht-overlay")) {
    const auto names = dht::overlay_names();
    if (std::find(names.begin(), names.end(), *v) == names.end()) {
      throw UsageError("--dht-overlay: '" + *v + "' is not available (chord, kelips and pastry are)");
    }
    o.overlay = *v;
  }
  if (auto v = a.last("--dht-groups")) o.options.groups = static_cast<std::uint32_t>(parse_int(*v, 1, 65536, "--dht-groups"));
  return o;
}

}  // namespace sv::cli
