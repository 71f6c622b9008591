// The host cache: Gnutella servents we have heard of (Pongs, Listen-IP,
// X-Try / X-Try-Ultrapeers headers, peers we reached), newest first, bounded.
// Saved in the state directory as "ip:port<TAB>last-seen-ms[<TAB>U]" lines
// (the times only order the entries; U: known to be an ultrapeer, from
// X-Try-Ultrapeers, a Pong's GGEP "UP" or its handshake).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "servent/core/types.hpp"

namespace sv {

class HostCache {
 public:
  explicit HostCache(std::size_t capacity = 1000) : capacity_(capacity) {}
  // Ignores unusable addresses (0.0.0.0/8, multicast and above, port 0).
  void add(Endpoint e, Instant seen);
  void remove(Endpoint e) {
    hosts_.erase(e);
    ultrapeers_.erase(e);
  }
  void mark_ultrapeer(Endpoint e, bool up);
  bool is_ultrapeer(Endpoint e) const { return ultrapeers_.count(e) != 0; }
  std::size_t ultrapeers() const { return ultrapeers_.size(); }
  bool contains(Endpoint e) const { return hosts_.count(e) != 0; }
  // The `n` most recently seen, skipping `except` (only known ultrapeers
  // with `ultrapeers_only`).
  std::vector<Endpoint> recent(std::size_t n, const std::vector<Endpoint>& except = {},
                               bool ultrapeers_only = false) const;
  std::size_t size() const { return hosts_.size(); }
  std::string to_text() const;
  // Reads what to_text() wrote; bad lines are skipped.
  void load(const std::string& text);
  // "a.b.c.d:port, a.b.c.d:port" (X-Try, X-Try-Ultrapeers)
  void add_list(std::string_view list, Instant seen, bool ultrapeers = false);
  static std::string format_list(const std::vector<Endpoint>& hosts);
  static bool usable(Endpoint e);

 private:
  std::size_t capacity_;
  std::map<Endpoint, Instant> hosts_;
  std::set<Endpoint> ultrapeers_;
};

}  // namespace sv
