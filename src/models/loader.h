// Reading hyper-parameters and weight views out of a GGUF file, with shape and type checks that
// name the tensor and the values involved.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "base/result.h"
#include "gguf/gguf.h"
#include "ops/weight_images.h"
#include "ops/weights.h"

namespace hylo::models {

class HparamReader {
 public:
  HparamReader(const gguf::File& file, std::string arch) : file_(file), arch_(std::move(arch)) {}
  // "<arch>.<key>" as an integer in [lo, hi]; error if missing.
  Result<int64_t> get_int(const std::string& key, int64_t lo = 1, int64_t hi = INT32_MAX) const;
  Result<int64_t> get_int_or(const std::string& key, int64_t fallback, int64_t lo = 0, int64_t hi = INT32_MAX) const;
  Result<float> get_float(const std::string& key) const;
  Result<float> get_float_or(const std::string& key, float fallback) const;
  std::string name(const std::string& key) const { return arch_ + "." + key; }

 private:
  const gguf::File& file_;
  std::string arch_;
};

class TensorLoader {
 public:
  // images: where matrices get their interleaved image (null: all in place).
  explicit TensorLoader(const gguf::File& file, ops::WeightImages* images = nullptr);

  bool has(const std::string& name) const { return file_.find_tensor(name) != nullptr; }
  // A 2-D weight of GGUF shape [n_in, n_out] whose type has a matmul kernel.
  Result<ops::Weight> matrix(const std::string& name, int64_t n_in, int64_t n_out);
  // Expert weights [n_in, n_out, n_expert].
  Result<ops::ExpertWeight> experts(const std::string& name, int64_t n_in, int64_t n_out, int64_t n_expert);
  // Rows of n_in elements read one at a time (the embedding table): any dequantizable type.
  Result<ops::Weight> table(const std::string& name, int64_t n_in, int64_t n_rows);
  // A small vector ([n] or [n, 1]) converted to f32.
  Result<std::vector<float>> vector(const std::string& name, int64_t n);

  // Tensors of the file never requested (reported by the caller as unused).
  std::vector<std::string> unused() const;
  uint64_t bytes_loaded() const { return bytes_; }

 private:
  Result<const gguf::TensorInfo*> find(const std::string& name, std::initializer_list<int64_t> ne);
  const gguf::File& file_;
  ops::WeightImages* images_;
  std::string file_name_;
  std::set<std::string> used_;
  uint64_t bytes_ = 0;
};

}  // namespace hylo::models
