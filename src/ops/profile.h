// HYLO_PROFILE=1: wall time per op family of the forward pass, printed when the process exits.
// A scoped timer costs two clock reads when profiling is on and one branch when it is off.
#pragma once

#include <chrono>

namespace hylo::ops {

// kForward is the whole forward call; the others are the parts timed inside it.
enum class Phase { kForward, kMatmul, kAttention, kDeltaRule, kConv, kCount };

bool profiling();
void add_phase_time(Phase p, double seconds);

class PhaseTimer {
 public:
  explicit PhaseTimer(Phase p) : phase_(p), on_(profiling()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~PhaseTimer() {
    if (on_) add_phase_time(phase_, std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count());
  }
  PhaseTimer(const PhaseTimer&) = delete;
  PhaseTimer& operator=(const PhaseTimer&) = delete;

 private:
  Phase phase_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace hylo::ops
