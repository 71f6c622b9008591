#include "servent/pcap/reassembly.hpp"

namespace sv::pcap {

void StreamReassembler::segment(std::uint32_t seq, bool syn, wire::ByteView data, std::uint64_t frame) {
  if (syn) {
    if (!started_) {
      started_ = true;
      next_seq_ = seq + 1;  // the SYN takes one sequence number
    }
    seq += 1;
  }
  if (data.empty()) return;
  if (!started_) {
    // The capture began mid-connection: start where we first see data.
    started_ = true;
    next_seq_ = seq;
  }
  const auto off = static_cast<std::int32_t>(seq - next_seq_);
  if (off < 0) {
    const auto behind = static_cast<std::uint64_t>(-static_cast<std::int64_t>(off));
    if (behind >= data.size()) {
      retransmitted_ += data.size();
      return;
    }
    retransmitted_ += behind;
    data = data.subspan(static_cast<std::size_t>(behind));
    seq += static_cast<std::uint32_t>(behind);
  }
  if (seq == next_seq_) {
    next_seq_ += static_cast<std::uint32_t>(data.size());
    next_abs_ += data.size();
    sink_(data, frame);
    drain(frame);
    return;
  }
  const std::uint64_t abs = next_abs_ + static_cast<std::uint64_t>(static_cast<std::uint32_t>(seq - next_seq_));
  auto [it, inserted] = pending_.try_emplace(abs, data.begin(), data.end());
  if (inserted) {
    pending_bytes_ += data.size();
  } else if (it->second.size() < data.size()) {
    pending_bytes_ += data.size() - it->second.size();
    it->second.assign(data.begin(), data.end());
  } else {
    retransmitted_ += data.size();
  }
  if (pending_bytes_ > max_pending_) skip_to_pending(frame);
}

void StreamReassembler::drain(std::uint64_t frame) {
  while (!pending_.empty() && pending_.begin()->first <= next_abs_) {
    auto node = pending_.extract(pending_.begin());
    pending_bytes_ -= node.mapped().size();
    const std::uint64_t start = node.key();
    const wire::Bytes& b = node.mapped();
    if (start + b.size() <= next_abs_) {
      retransmitted_ += b.size();
      continue;
    }
    const auto skip = static_cast<std::size_t>(next_abs_ - start);
    retransmitted_ += skip;
    wire::ByteView rest = wire::ByteView(b).subspan(skip);
    next_abs_ += rest.size();
    next_seq_ += static_cast<std::uint32_t>(rest.size());
    sink_(rest, frame);
  }
}

void StreamReassembler::skip_to_pending(std::uint64_t frame) {
  if (pending_.empty()) return;
  const std::uint64_t missing = pending_.begin()->first - next_abs_;
  gap_bytes_ += missing;
  gap_(missing, frame);
  next_seq_ += static_cast<std::uint32_t>(missing);
  next_abs_ += missing;
  drain(frame);
}

void StreamReassembler::finish(std::uint64_t frame) {
  while (!pending_.empty()) skip_to_pending(frame);
}

}  // namespace sv::pcap
