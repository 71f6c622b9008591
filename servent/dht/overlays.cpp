#include "servent/dht/overlays.hpp"

#include <functional>
#include <utility>

#include "servent/dht/chord_core.hpp"
#include "servent/dht/kelips_core.hpp"
#include "servent/dht/pastry_core.hpp"

namespace sv::dht {

namespace {

using Make = std::function<std::unique_ptr<DhtCore>(const DhtOptions&, std::uint64_t, Endpoint, SocketId)>;

const std::vector<std::pair<std::string_view, Make>>& registry() {
  static const std::vector<std::pair<std::string_view, Make>> table = {
      {"chord",
       [](const DhtOptions& o, std::uint64_t seed, Endpoint self, SocketId socket) -> std::unique_ptr<DhtCore> {
         ChordConfig c;
         if (o.bits) c.bits = *o.bits;
         if (o.successors) c.successors = *o.successors;
         return std::make_unique<ChordCore>(self, socket, c, seed);
       }},
      {"kelips",
       [](const DhtOptions& o, std::uint64_t seed, Endpoint self, SocketId socket) -> std::unique_ptr<DhtCore> {
         KelipsConfig c;
         if (o.bits) c.bits = *o.bits;
         if (o.groups) c.groups = *o.groups;
         if (o.homes) c.homes = *o.homes;
         return std::make_unique<KelipsCore>(self, socket, c, seed);
       }},
      {"pastry",
       [](const DhtOptions& o, std::uint64_t seed, Endpoint self, SocketId socket) -> std::unique_ptr<DhtCore> {
         PastryConfig c;
         if (o.bits) c.bits = *o.bits;
         if (o.replicas) c.replicas = *o.replicas;
         return std::make_unique<PastryCore>(self, socket, c, seed);
       }},
  };
  return table;
}

}  // namespace

std::vector<std::string_view> overlay_names() {
  std::vector<std::string_view> out;
  for (const auto& [name, make] : registry()) out.push_back(name);
  return out;
}

std::unique_ptr<DhtCore> make_overlay(std::string_view name, const DhtOptions& options, std::uint64_t seed, Endpoint self,
                                      SocketId socket) {
  for (const auto& [n, make] : registry()) {
    if (n == name) return make(options, seed, self, socket);
  }
  return nullptr;
}

}  // namespace sv::dht
