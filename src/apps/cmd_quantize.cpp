// `hylo quantize`: rewrites a GGUF with its weight matrices in another format (q8_0, q4_k_m, ...),
// metadata and every other tensor copied as they are. The same type rules as make-model (the
// llama.cpp-style _m mixes); quantizers bit-exact with ggml's reference ones. No importance matrix.
#include <map>
#include <memory>

#include "apps/command.h"
#include "apps/common.h"
#include "base/cpu.h"
#include "base/log.h"
#include "base/timer.h"
#include "gguf/gguf.h"
#include "gguf/writer.h"
#include "kernels/quant.h"
#include "models/synthetic.h"

namespace hylo::apps {
namespace {

struct Options {
  std::string in, out, type;
  int threads = 0;
};

// Tensors that stay as they are: vectors, norms, the routers, the conv kernel and the DeltaNet
// decay parameters (llama.cpp keeps them in f32 too).
bool keep_as_is(const gguf::TensorInfo& t) {
  if (t.n_dims < 2) return true;
  for (const char* s : {"_norm", "norm.weight", "ffn_gate_inp", "ssm_conv1d", "ssm_a", "ssm_dt"})
    if (t.name.find(s) != std::string::npos) return true;
  return false;
}

int run(const Options& o) {
  if (!models::is_weight_format(o.type))
    return fail(make_error("[quantize] --type {}: expected {}", o.type, models::weight_format_names()));
  if (o.in == o.out) return fail(make_error("[quantize] the output file must differ from the input {}", o.in));
  auto file = gguf::File::open(o.in);
  if (!file.ok()) return fail(file.error());
  const gguf::File& f = *file;
  ThreadPool pool(o.threads > 0 ? o.threads : physical_core_count());

  gguf::Writer w(f.alignment());
  for (const auto& [key, value] : f.metadata()) w.set(key, value);
  w.set_u32("general.file_type", models::llama_file_type(o.type));
  const bool tied = f.find_tensor("output.weight") == nullptr;
  uint64_t in_bytes = 0;
  for (const gguf::TensorInfo& t : f.tensors()) {
    std::vector<int64_t> ne(t.ne.begin(), t.ne.begin() + t.n_dims);
    in_bytes += t.n_bytes;
    if (keep_as_is(t)) {
      const uint8_t* src = f.tensor_data(t);
      w.add_tensor_bytes(t.name, t.type, ne, std::vector<uint8_t>(src, src + t.n_bytes));
      continue;
    }
    if (!kernels::can_dequantize(t.type))
      return fail(make_error("[quantize] {}: tensor {} has type {}, which this build cannot read", o.in, t.name,
                             tensor_type_name(t.type)));
    // A tied embedding is also the LM head: the mixes treat it as output.weight, as llama.cpp does.
    const std::string rule_name = tied && t.name == "token_embd.weight" ? "output.weight" : t.name;
    auto type = models::matrix_type(o.type, rule_name, t.ne[0]);
    if (!type.ok()) return fail(type.error());
    const TensorType dst_type = *type, src_type = t.type;
    const int64_t ne0 = t.ne[0];
    const uint64_t src_rb = row_bytes(src_type, ne0), dst_rb = row_bytes(dst_type, ne0);
    const uint8_t* src = f.tensor_data(t);
    w.add_tensor(t.name, dst_type, ne,
                 [&pool, src, src_type, dst_type, ne0, src_rb, dst_rb](uint8_t* dst, int64_t r0, int64_t r1) {
                   pool.parallel_for(r1 - r0, 16, [&](int64_t b0, int64_t b1) {
                     std::vector<float> row(ne0);
                     for (int64_t r = b0; r < b1; ++r) {
                       kernels::dequantize_row(src_type, src + (r0 + r) * src_rb, row.data(), ne0);
                       kernels::quantize_row(dst_type, row.data(), dst + r * dst_rb, ne0);
                     }
                   });
                 });
  }
  Timer timer;
  if (auto st = w.write(o.out); !st.ok()) return fail(st.error());
  log_info("[quantize] wrote {} ({}, {:.1f} MB of tensors from {:.1f} MB) in {:.1f} s", o.out, o.type,
           w.data_bytes() / 1e6, in_bytes / 1e6, timer.seconds());
  return kExitOk;
}

CommandRegistrar reg("quantize", "Rewrite a GGUF with its weight matrices in another format", 25, [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("input", o->in, "Input GGUF file")->required();
  app.add_option("output", o->out, "Output GGUF file")->required();
  app.add_option("--type", o->type, models::weight_format_names())->required();
  app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace hylo::apps
