#include "sim/dgram_net.hpp"

#include <cmath>
#include <limits>

namespace sv::sim {

namespace {
constexpr std::size_t kTimer = std::numeric_limits<std::size_t>::max();
}

std::size_t DgramNet::add(std::unique_ptr<Core> core, Endpoint address) {
  Node n;
  n.core = std::move(core);
  n.address = address;
  n.x = static_cast<double>(rng_.below(1u << 20)) / (1u << 20);
  n.y = static_cast<double>(rng_.below(1u << 20)) / (1u << 20);
  nodes_.push_back(std::move(n));
  by_address_[address] = nodes_.size() - 1;
  pump(nodes_.size() - 1);
  return nodes_.size() - 1;
}

void DgramNet::kill(std::size_t i) {
  nodes_[i].alive = false;
  nodes_[i].timer.reset();
  by_address_.erase(nodes_[i].address);
}

Duration DgramNet::latency(std::size_t a, std::size_t b) const {
  const double d = std::hypot(nodes_[a].x - nodes_[b].x, nodes_[a].y - nodes_[b].y);
  return base + std::chrono::duration_cast<Duration>(per_unit * d);
}

void DgramNet::with(std::size_t i, const std::function<void(Core&)>& fn) {
  fn(*nodes_[i].core);
  pump(i);
}

void DgramNet::push(Instant at, std::size_t node, std::size_t from, SharedBuffer bytes) {
  Ev ev{at, seq_++, node, from, std::move(bytes)};
  if (at.since_epoch.count() - cursor_ < kSpan) {
    slot(at.since_epoch.count()).push_back(std::move(ev));
    ++in_wheel_;
  } else {
    far_.push(std::move(ev));
  }
}

void DgramNet::bring_in() {
  while (!far_.empty() && far_.top().at.since_epoch.count() - cursor_ < kSpan) {
    // (moved out: only `at` and `seq` order the heap, and pop() does not
    // look at the rest)
    Ev ev = std::move(const_cast<Ev&>(far_.top()));
    far_.pop();
    slot(ev.at.since_epoch.count()).push_back(std::move(ev));
    ++in_wheel_;
  }
}

void DgramNet::pump(std::size_t i) {
  Node& n = nodes_[i];
  if (!n.alive) return;
  while (auto a = n.core->poll_action()) {
    const auto* send = std::get_if<action::SendTo>(&*a);
    if (!send) continue;  // (datagram cores ask for nothing else)
    ++sent_;
    auto it = by_address_.find(send->to);
    if (on_send) on_send(i, it == by_address_.end() ? kTimer : it->second, *send->bytes);
    if (it == by_address_.end()) continue;
    if (loss > 0 && static_cast<double>(rng_.below(1'000'000)) < loss * 1e6) continue;
    push(now_ + latency(i, it->second), it->second, i, send->bytes);
  }
  if (auto t = n.core->poll_timeout(); t && (!n.timer || *t < *n.timer)) {
    n.timer = std::max(*t, now_);
    push(*n.timer, i, kTimer, nullptr);
  }
}

void DgramNet::deliver(Ev& ev) {
  now_ = ev.at;
  Node& n = nodes_[ev.node];
  if (!n.alive) return;
  if (ev.from == kTimer) {
    if (!n.timer || *n.timer != ev.at) return;  // superseded
    n.timer.reset();
    n.core->handle_timeout(now_);
  } else {
    ++delivered_;
    const Endpoint from = nodes_[ev.from].address;
    n.core->handle_datagram(SocketId{0}, from, *ev.bytes, now_);
  }
  pump(ev.node);
}

bool DgramNet::run_until(Instant until, std::size_t max_events) {
  const std::int64_t end = until.since_epoch.count();
  std::size_t done = 0;
  for (;;) {
    // (the slot is looked up again each time: delivering may push onto it)
    if (std::vector<Ev>& now_slot = slot(cursor_); taken_ < now_slot.size()) {
      if (cursor_ > end) break;
      if (done++ >= max_events) return false;
      Ev ev = std::move(now_slot[taken_++]);
      --in_wheel_;
      deliver(ev);
      continue;
    }
    slot(cursor_).clear();
    taken_ = 0;
    if (in_wheel_ > 0) {
      if (cursor_ + 1 > end) break;
      ++cursor_;
    } else {
      if (far_.empty() || far_.top().at.since_epoch.count() > end) break;
      cursor_ = far_.top().at.since_epoch.count();
    }
    bring_in();
  }
  now_ = std::max(now_, until);
  return true;
}

}  // namespace sv::sim
