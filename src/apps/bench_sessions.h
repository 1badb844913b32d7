// `hylo bench --sessions N --turns T --context C`: time to first token of interleaved multi-turn
// conversations, without and with the prefix cache (bench_sessions.cpp).
#pragma once

#include <cstdint>
#include <string>

#include "apps/common.h"

namespace hylo::apps {

struct SessionBenchOptions {
  std::string model;
  int threads = 0;
  int32_t batch = 2048;
  KvCacheFlags kv;   // -ctk / -ctv / --kv-type
  int sessions = 0;  // conversations replayed (0: not this benchmark)
  int turns = 4;
  int32_t context = 8192;  // prompt tokens of each conversation's last turn
  int parallel = 2;        // slots
  std::string cache_ram = "auto";
  int32_t cache_interval = 2048;
};

int run_session_bench(const SessionBenchOptions& o);

}  // namespace hylo::apps
