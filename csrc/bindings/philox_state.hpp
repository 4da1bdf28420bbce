// The Python-visible generator state of gs.Philox: a 64-bit seed (the Philox key) and a
// counter of rows consumed, in [0, 2**64].  Row reservation is atomic (a mutex: it is
// held for a few instructions, never across a kernel).
#pragma once

#include <cstdint>
#include <mutex>

#include "gumbel_softmax/kernels.hpp"

namespace gumbel_softmax {

class PhiloxState {
 public:
  PhiloxState(uint64_t seed, uint64_t counter) : seed_(seed), next_(counter) {}
  PhiloxState(const PhiloxState& o) : seed_(o.seed_) {
    std::lock_guard<std::mutex> lock(o.mutex_);
    next_ = o.next_;
    exhausted_ = o.exhausted_;
  }

  uint64_t seed() const { return seed_; }
  PhiloxKey key() const {
    return {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)};
  }

  // The counter as (low 64 bits, reached 2**64).
  void counter(uint64_t& low, bool& at_end) const {
    std::lock_guard<std::mutex> lock(mutex_);
    low = next_;
    at_end = exhausted_;
  }

  // Reserves rows [start, start + n) and returns start; returns false (reserving
  // nothing) if that would pass row 2**64 - 1.
  bool reserve(uint64_t n, uint64_t& start) {
    std::lock_guard<std::mutex> lock(mutex_);
    start = next_;
    if (n == 0) return true;
    if (exhausted_) return false;
    const uint64_t last_room = UINT64_MAX - next_;  // rows left, minus one
    if (n - 1 > last_room) return false;
    if (n - 1 == last_room) {
      exhausted_ = true;
      next_ = 0;
    } else {
      next_ += n;
    }
    return true;
  }

  // Gives back rows [start, start + n) of a reserve() whose call then failed, if no
  // other reservation followed it (another thread's rows are never given out twice);
  // returns whether it did.
  bool unreserve(uint64_t start, uint64_t n) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (n == 0) return true;
    const bool to_end = start + n == 0;  // wrapped: the reservation ended at 2**64
    if (exhausted_ ? !to_end : next_ != start + n) return false;
    exhausted_ = false;
    next_ = start;
    return true;
  }

 private:
  const uint64_t seed_;
  mutable std::mutex mutex_;
  uint64_t next_ = 0;
  bool exhausted_ = false;  // the counter is 2**64: every row has been used
};

}  // namespace gumbel_softmax
