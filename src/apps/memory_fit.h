// The check before a model is loaded for generation: weights + KV cache + recurrent state +
// compute buffers (models/cost.h) against available memory. When they do not fit, the numbers
// and the ways out (a smaller quantization, a smaller context, a quantized KV cache, streaming
// the weights from disk with --mmap and the decode speed to expect then).
#pragma once

#include <cstdint>
#include <string>

#include "base/tensor_type.h"
#include "models/cost.h"
#include "models/model.h"

namespace hylo::apps {

struct FitInputs {
  int64_t n_ctx = 0;
  int n_seq = 1;
  TensorType type_k = TensorType::kF16, type_v = TensorType::kF16;
  int64_t n_batch = 2048;
  uint64_t available = 0;       // bytes of memory available now
  double disk_read_gbs = 0;     // the model file's read speed (0: unknown)
  std::string command = "run";  // the command the suggested flags are for
};

struct FitReport {
  bool fits = false;
  models::MemoryNeed need;
  std::string summary;         // "weights … + KV cache … + … = total, available …"
  std::string options;         // the ways out, one per line (empty when it fits)
  double streaming_tok_s = 0;  // estimated decode speed with --mmap when it does not fit
};

FitReport check_fit(const models::Model& model, const FitInputs& in);

// Sequential read speed of the file in GB/s, from its pages not in the page cache (dropped
// first for a span in the middle of the file); 0 if it cannot be measured.
double measure_file_read_gbs(const std::string& path, uint64_t bytes = 64ull << 20);

}  // namespace hylo::apps
