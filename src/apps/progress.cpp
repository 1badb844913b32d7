#include "apps/progress.h"

#include <unistd.h>

#include <cstdio>

namespace hylo::apps {

bool stderr_is_tty() { return isatty(STDERR_FILENO) == 1; }
bool stdout_is_tty() { return isatty(STDOUT_FILENO) == 1; }

Progress::Progress(std::string label, int64_t total, std::string unit)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), tty_(stderr_is_tty()) {}

void Progress::update(int64_t done) {
  if (finished_ || total_ <= 0) return;
  const double t = timer_.seconds();
  const double frac = static_cast<double>(done) / static_cast<double>(total_);
  const double rate = t > 0 ? static_cast<double>(done) / t : 0;
  if (tty_) {
    if (done < total_ && t - last_draw_ < 0.1) return;  // at most 10 redraws per second
    last_draw_ = t;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r%s [%s] %3.0f%%  %lld/%lld %s  %.0f %s/s   ", label_.c_str(), bar.c_str(), frac * 100,
                 static_cast<long long>(done), static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str());
  } else {
    const int decile = static_cast<int>(frac * 4);  // a line per quarter
    if (decile == last_decile_) return;
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %lld/%lld %s (%.0f%%)\n", label_.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), unit_.c_str(), frac * 100);
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (finished_) return;
  update(total_);
  if (tty_) std::fprintf(stderr, "\r\033[K");
  finished_ = true;
}

}  // namespace hylo::apps
