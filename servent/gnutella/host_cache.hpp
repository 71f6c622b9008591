// The host cache: Gnutella servents we have heard of (Pongs, Listen-IP,
// X-Try / X-Try-Ultrapeers headers, peers we reached), newest first, bounded.
// Saved in the state directory as "ip:port<TAB>last-seen-ms[<TAB>U]" lines
// (the times only order the entries; U: known to be an ultrapeer, from
// X-Try-Ultrapeers, a Pong's GGEP "UP" or its handshake). For ultrapeers it
// also keeps whether their last word (a Pong's GGEP "UP" free leaf slots, a
// 503 refusal) said they had room for a leaf; not saved (it changes fast).
// An ultrapeer found full rests: recent() leaves it out of the ultrapeer
// picks until the rest ends or it says it has room again (a leaf short of
// ultrapeers looks for one at every refusal; walking past every full one it
// knew each time was a quarter of a 10,000-node network's cost).
#pragma once

#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "servent/core/types.hpp"

namespace sv {

class HostCache {
 public:
  explicit HostCache(std::size_t capacity = 1000) : capacity_(capacity) {}
  // Ignores unusable addresses (0.0.0.0/8, multicast and above, port 0).
  void add(Endpoint e, Instant seen);
  void remove(Endpoint e);
  void mark_ultrapeer(Endpoint e, bool up);
  bool is_ultrapeer(Endpoint e) const {
    auto it = hosts_.find(e);
    return it != hosts_.end() && it->second.up;
  }
  // An ultrapeer said it has (or has no) room for another leaf.
  void mark_leaf_room(Endpoint e, bool room);
  bool has_leaf_room(Endpoint e) const {
    auto it = hosts_.find(e);
    return it != hosts_.end() && it->second.room;
  }
  std::size_t ultrapeers() const { return ultrapeers_; }
  // Out of the ultrapeer picks until `until` (wake_due) or mark_leaf_room(e, true).
  void rest(Endpoint e, Instant until);
  void wake(Endpoint e);
  void wake_due(Instant now);
  bool resting(Endpoint e) const {
    auto it = hosts_.find(e);
    return it != hosts_.end() && it->second.rest_until != Instant{};
  }
  bool contains(Endpoint e) const { return hosts_.count(e) != 0; }
  enum class Pick : std::uint8_t { Any, Ultrapeers, UltrapeersWithRoom };
  // The `n` most recently seen (ties by address) of the hosts `pick` names,
  // skipping `except`; walks no more of the cache than it returns and skips.
  std::vector<Endpoint> recent(std::size_t n, const std::vector<Endpoint>& except = {}, Pick pick = Pick::Any) const;
  std::size_t size() const { return hosts_.size(); }
  // Counts new hosts and changed marks (not a known host seen again): what
  // recent() can return changed only if this did.
  std::uint64_t changes() const { return changes_; }
  std::string to_text() const;
  // Reads what to_text() wrote; bad lines are skipped.
  void load(const std::string& text);
  // "a.b.c.d:port, a.b.c.d:port" (X-Try, X-Try-Ultrapeers)
  void add_list(std::string_view list, Instant seen, bool ultrapeers = false);
  static std::string format_list(const std::vector<Endpoint>& hosts);
  static bool usable(Endpoint e);

 private:
  using Key = std::pair<Instant, Endpoint>;
  struct Newer {
    bool operator()(const Key& a, const Key& b) const {
      return a.first != b.first ? a.first > b.first : a.second < b.second;
    }
  };
  using Index = std::set<Key, Newer>;
  struct Sooner {
    bool operator()(const Key& a, const Key& b) const {
      return a.first != b.first ? a.first < b.first : a.second < b.second;
    }
  };
  using RestIndex = std::set<Key, Sooner>;
  struct Entry {
    Instant seen;
    bool up = false;
    bool room = false;     // (an ultrapeer) with room for a leaf
    Instant rest_until{};  // resting while not zero
    // Where it sits in each index (valid while it is in that index): removed
    // by position, not looked up again.
    Index::iterator at_time{}, at_up{}, at_room{};
    RestIndex::iterator at_rest{};
    bool picked_as_up() const { return up && rest_until == Instant{}; }
  };
  std::size_t capacity_;
  std::uint64_t changes_ = 0;
  std::unordered_map<Endpoint, Entry, EndpointHash> hosts_;
  Index by_time_;       // every host, newest first
  Index by_time_up_;    // the known ultrapeers, newest first
  Index by_time_room_;  // those of them with room for a leaf
  RestIndex resting_;   // by the end of their rest
  std::size_t ultrapeers_ = 0;
  void unindex(Entry& en);
  void index(Endpoint e, Entry& en);
};

}  // namespace sv
