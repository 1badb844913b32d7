#include "models/loader.h"

#include <fmt/format.h>

#include "kernels/quant.h"

namespace hylo::models {

Result<int64_t> HparamReader::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const std::string k = name(key);
  const gguf::Value* v = file_.find(k);
  if (v == nullptr) return make_error("[model] {}: required metadata {} is missing", file_.path(), k);
  auto i = v->as_int();
  if (!i) return make_error("[model] {}: metadata {} must be an integer, is {}", file_.path(), k, v->to_string());
  if (*i < lo || *i > hi)
    return make_error("[model] {}: metadata {} = {} is outside [{}, {}]", file_.path(), k, *i, lo, hi);
  return *i;
}

Result<int64_t> HparamReader::get_int_or(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
  if (file_.find(name(key)) == nullptr) return fallback;
  return get_int(key, lo, hi);
}

Result<float> HparamReader::get_float(const std::string& key) const {
  const std::string k = name(key);
  const gguf::Value* v = file_.find(k);
  if (v == nullptr) return make_error("[model] {}: required metadata {} is missing", file_.path(), k);
  auto d = v->as_double();
  if (!d || !std::isfinite(*d))
    return make_error("[model] {}: metadata {} must be a finite number, is {}", file_.path(), k, v->to_string());
  return static_cast<float>(*d);
}

Result<float> HparamReader::get_float_or(const std::string& key, float fallback) const {
  if (file_.find(name(key)) == nullptr) return fallback;
  return get_float(key);
}

TensorLoader::TensorLoader(const gguf::File& file, ops::WeightImages* images) : file_(file), images_(images) {
  file_name_ = file.path();
  if (auto s = file_name_.rfind('/'); s != std::string::npos) file_name_ = file_name_.substr(s + 1);
}

Result<const gguf::TensorInfo*> TensorLoader::find(const std::string& name, std::initializer_list<int64_t> ne) {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (t == nullptr) return make_error("[model] {}: tensor {} is missing", file_name_, name);
  std::vector<int64_t> want(ne);
  bool ok = true;
  for (size_t d = 0; d < gguf::kMaxDims; ++d) {
    const int64_t w = d < want.size() ? want[d] : 1;
    ok = ok && t->ne[d] == w;
  }
  if (!ok) {
    std::string expected = "[";
    for (size_t d = 0; d < want.size(); ++d) expected += (d ? ", " : "") + std::to_string(want[d]);
    return make_error("[model] {}: tensor {}: shape {} expected {}]", file_name_, name, t->shape_string(), expected);
  }
  used_.insert(name);
  bytes_ += t->n_bytes;
  return t;
}

Result<ops::Weight> TensorLoader::matrix(const std::string& name, int64_t n_in, int64_t n_out) {
  HYLO_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find(name, {n_in, n_out}));
  ops::Weight w;
  w.kernel = kernels::matmul_kernel(t->type);
  if (w.kernel == nullptr)
    return make_error("[model] {}: tensor {}: type {} has no matrix kernel in this build", file_name_, name,
                      tensor_type_name(t->type));
  w.data = file_.tensor_data(*t);
  w.type = t->type;
  w.n_in = n_in;
  w.n_out = n_out;
  w.row_stride = row_bytes(t->type, static_cast<uint64_t>(n_in));
  w.name = t->name;
  if (images_ != nullptr) images_->add(w);
  return w;
}

Result<ops::ExpertWeight> TensorLoader::experts(const std::string& name, int64_t n_in, int64_t n_out,
                                                int64_t n_expert) {
  HYLO_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find(name, {n_in, n_out, n_expert}));
  ops::ExpertWeight e;
  e.first.kernel = kernels::matmul_kernel(t->type);
  if (e.first.kernel == nullptr)
    return make_error("[model] {}: tensor {}: type {} has no matrix kernel in this build", file_name_, name,
                      tensor_type_name(t->type));
  e.first.data = file_.tensor_data(*t);
  e.first.type = t->type;
  e.first.n_in = n_in;
  e.first.n_out = n_out;
  e.first.row_stride = row_bytes(t->type, static_cast<uint64_t>(n_in));
  e.first.name = t->name;
  e.expert_stride = e.first.row_stride * static_cast<size_t>(n_out);
  e.n_expert = n_expert;
  if (images_ != nullptr) images_->add(e);
  return e;
}

Result<ops::Weight> TensorLoader::table(const std::string& name, int64_t n_in, int64_t n_rows) {
  HYLO_ASSIGN_OR_RETURN(const gguf::TensorInfo* t, find(name, {n_in, n_rows}));
  if (!kernels::can_dequantize(t->type))
    return make_error("[model] {}: tensor {}: type {} cannot be read by this build", file_name_, name,
                      tensor_type_name(t->type));
  ops::Weight w;
  w.data = file_.tensor_data(*t);
  w.type = t->type;
  w.n_in = n_in;
  w.n_out = n_rows;
  w.row_stride = row_bytes(t->type, static_cast<uint64_t>(n_in));
  w.kernel = kernels::matmul_kernel(t->type);  // may be null: only needed if used as LM head
  w.name = t->name;
  return w;
}

Result<std::vector<float>> TensorLoader::vector(const std::string& name, int64_t n) {
  const gguf::TensorInfo* t = file_.find_tensor(name);
  if (t == nullptr) return make_error("[model] {}: tensor {} is missing", file_name_, name);
  // Accept [n] and [n, 1] (some converters write 2-D gate vectors).
  HYLO_ASSIGN_OR_RETURN(
      t, find(name, t->n_dims == 2 ? std::initializer_list<int64_t>{n, 1} : std::initializer_list<int64_t>{n}));
  if (!kernels::can_dequantize(t->type))
    return make_error("[model] {}: tensor {}: type {} cannot be read by this build", file_name_, name,
                      tensor_type_name(t->type));
  std::vector<float> v(static_cast<size_t>(n));
  kernels::dequantize_row(t->type, file_.tensor_data(*t), v.data(), n);
  return v;
}

std::vector<std::string> TensorLoader::unused() const {
  std::vector<std::string> out;
  for (const auto& t : file_.tensors())
    if (!used_.count(t.name)) out.push_back(t.name);
  return out;
}

}  // namespace hylo::models
