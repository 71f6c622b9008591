// Reputation: what this node itself saw of each peer, as a score 0..1000
// (FastTrack's idea: a new peer starts at 10 and earns the rest by staying up
// and by transfers that complete; nothing any peer says about another counts).
//
// Observations per peer (by its address: IPv4 and, when known, the port it
// listens on) and what each is worth:
//   link uptime            +1 per minute, at most +400
//   files it served us     +20 each, at most +300
//   files we served it     +5 each, at most +100
//   it accepted our connect (reachable)   +100 once
//   protocol errors        -50 each (malformed messages, QRP errors, role lies)
//   dropped descriptors    -1 per 100, at most -200
// clamped to 0..1000. Kept in the state directory ("reputation", one line
// per peer), at most `capacity` peers (the least recently seen go first).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "servent/core/types.hpp"

namespace sv {

class ReputationBook {
 public:
  static constexpr int kStart = 10;
  static constexpr int kMax = 1000;

  struct Record {
    std::uint64_t uptime_s = 0;
    std::uint32_t served_us = 0, we_served = 0;
    bool reachable = false;
    std::uint32_t errors = 0;
    std::uint64_t drops = 0;
    std::int64_t last_seen = 0;  // seconds, the node's clock
    int score() const;
  };

  explicit ReputationBook(std::size_t capacity = 20000) : capacity_(capacity) {}

  // "a.b.c.d:port" (port 0: the address alone, e.g. a downloader).
  static std::string key(Endpoint e);

  void link_time(Endpoint peer, Duration up, Instant now);
  void served_us(std::uint32_t ip, Instant now);
  void we_served(std::uint32_t ip, Instant now);
  void reachable(Endpoint peer, Instant now);
  void error(Endpoint peer, Instant now);
  void drops(Endpoint peer, std::uint64_t n, Instant now);

  // 10 for a peer never seen.
  int score(Endpoint peer) const;
  const Record* find(Endpoint peer) const;
  std::size_t size() const { return book_.size(); }

  // One line per peer: key uptime_s served_us we_served reachable errors drops last_seen.
  std::string save() const;
  // Lines that do not parse are skipped; returns how many were read.
  std::size_t load(std::string_view text);

 private:
  Record& at(Endpoint peer, Instant now);
  // A transfer is known by its address alone: the record with that address
  // (a listening one if there is), else one of its own.
  Record& by_ip(std::uint32_t ip, Instant now);
  void bound(const std::string* keep);

  std::size_t capacity_;
  std::map<std::string, Record> book_;
};

}  // namespace sv
