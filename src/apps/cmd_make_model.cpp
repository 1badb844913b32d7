// `hylo make-model`: a deterministic random-weight model with a real architecture's layout.
#include <memory>

#include "apps/command.h"
#include "apps/common.h"
#include "apps/default_model.h"
#include "base/cpu.h"
#include "base/log.h"
#include "base/timer.h"

namespace hylo::apps {
namespace {

struct Options {
  models::SyntheticSpec spec;
  std::string out, tokenizer_dir;
  int threads = 0;
};

int run(const Options& o) {
  ThreadPool pool(o.threads > 0 ? o.threads : physical_core_count());
  if (auto st = models::validate(o.spec); !st.ok()) return fail(st.error());
  Timer t;
  auto bytes = make_model(o.spec, o.out, pool, o.tokenizer_dir);
  if (!bytes.ok()) return fail(bytes.error());
  log_info("[make-model] wrote {} ({:.1f} MB) in {:.1f} s", o.out, *bytes / 1e6, t.seconds());
  return kExitOk;
}

CommandRegistrar reg("make-model", "Write a deterministic random-weight model (real tensor layout)", 20,
                     [](CLI::App& app) {
                       auto o = std::make_shared<Options>();
                       app.add_option("--arch", o->spec.arch, "qwen3next or qwen3moe")->required();
                       app.add_option("--preset", o->spec.preset, "tiny, small or bench")->required();
                       app.add_option("--type", o->spec.type, models::weight_format_names())->capture_default_str();
                       app.add_option("--seed", o->spec.seed, "Random seed")->capture_default_str();
                       app.add_option("--layout", o->spec.layout, "qwen3next DeltaNet input: split or legacy")
                           ->capture_default_str();
                       app.add_flag("--mtp", o->spec.mtp, "qwen3next: append one MTP (NextN) block");
                       app.add_flag_callback(
                           "--mtp-agree",
                           [o] {
                             o->spec.mtp = true;
                             o->spec.mtp_agree = true;
                           },
                           "qwen3next: an MTP model whose drafts the trunk accepts (greedy next token = "
                           "current + 1), to measure speculative decoding");
                       app.add_option("--tokenizer-dir", o->tokenizer_dir,
                                      "Directory with tokenizer.json and tokenizer_config.json");
                       app.add_option("-t,--threads", o->threads, "Threads (default: physical cores)");
                       app.add_option("-o,--output", o->out, "Output GGUF file")->required();
                       return [o] { return run(*o); };
                     });

}  // namespace
}  // namespace hylo::apps
