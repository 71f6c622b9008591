// The DHT overlays a node can run, by name: one registration each (the
// commands, `servent run --dht` and the benches make their cores here).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "servent/dht/dht_core.hpp"

namespace sv::dht {

// What the command line may set; every overlay reads what it uses and
// keeps its own defaults for the rest.
struct DhtOptions {
  std::optional<int> bits;                 // --id-bits (all)
  std::optional<std::size_t> successors;   // --successors (chord)
  std::optional<std::uint32_t> groups;     // --groups (kelips: the same at every node)
  std::optional<std::size_t> homes;        // --homes (kelips)
  std::optional<std::size_t> replicas;     // --replicas (pastry)
};

// The names, in the order help lists them.
std::vector<std::string_view> overlay_names();
// A core of the named overlay (nullptr: no such overlay). `self` and
// `socket` as the cores take them (bind() sets both once the socket is up).
std::unique_ptr<DhtCore> make_overlay(std::string_view name, const DhtOptions& options, std::uint64_t seed,
                                      Endpoint self = {}, SocketId socket = {});

}  // namespace sv::dht
