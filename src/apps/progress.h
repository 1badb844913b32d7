// Progress display on stderr: an updating bar on a terminal, a few plain lines otherwise.
#pragma once

#include <cstdint>
#include <string>

#include "base/timer.h"

namespace hylo::apps {

class Progress {
 public:
  Progress(std::string label, int64_t total, std::string unit);
  void update(int64_t done);
  void finish();

 private:
  std::string label_, unit_;
  int64_t total_;
  bool tty_;
  int last_decile_ = -1;
  double last_draw_ = -1;
  bool finished_ = false;
  Timer timer_;
};

bool stderr_is_tty();
bool stdout_is_tty();

}  // namespace hylo::apps
