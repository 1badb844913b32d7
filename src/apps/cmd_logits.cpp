// `hylo logits`: the logits of every position of a prompt as a float32 .npy [n_positions, n_vocab],
// through the batched prefill path or (--step) one token at a time through decode.
#include <memory>

#include "apps/command.h"
#include "apps/common.h"
#include "base/log.h"
#include "base/npy.h"
#include "base/strings.h"
#include "models/model.h"

namespace hylo::apps {
namespace {

struct Options {
  std::string model, prompt, ids, out;
  bool step = false;
  std::string chunks;  // e.g. "100,100,100,29": prefill in pieces, state carried over
  std::string mtp_out;  // logits of the MTP head, fed as llama.cpp's draft-mtp does
  EngineFlags engine;
};

int run(const Options& o) {
  auto model = models::load_model(o.model);
  if (!model.ok()) return fail(model.error());
  std::vector<int32_t> tokens;
  if (!o.ids.empty()) {
    auto parsed = parse_int_list(o.ids, "--ids");
    if (!parsed.ok()) return fail(parsed.error());
    tokens = std::move(*parsed);
  } else {
    auto t = tokenize_prompt(**model, o.prompt);
    if (!t.ok()) return fail(t.error());
    tokens = std::move(*t);
  }
  if (tokens.empty()) return fail(make_error("[logits] the prompt has no tokens"));
  std::vector<int64_t> pieces;
  if (o.step) {
    pieces.assign(tokens.size(), 1);
  } else if (!o.chunks.empty()) {
    auto parsed = parse_int_list(o.chunks, "--chunks");
    if (!parsed.ok()) return fail(parsed.error());
    int64_t sum = 0;
    for (int32_t c : *parsed) {
      if (c <= 0) return fail(make_error("[logits] --chunks entries must be positive"));
      pieces.push_back(c);
      sum += c;
    }
    if (sum != static_cast<int64_t>(tokens.size()))
      return fail(make_error("[logits] --chunks add up to {}, the prompt has {} tokens", sum, tokens.size()));
  } else {
    pieces.push_back(static_cast<int64_t>(tokens.size()));
  }
  const int64_t n_vocab = (*model)->info().n_vocab;
  auto setup = o.engine.make(**model, 1, static_cast<int32_t>(tokens.size()), TensorType::kF32);
  if (!setup.ok()) return fail(setup.error());
  std::vector<float> logits(tokens.size() * n_vocab);
  int64_t done = 0;
  for (int64_t n : pieces) {
    std::vector<models::BatchRow> rows(n);
    for (int64_t i = 0; i < n; ++i)
      rows[i] = {0, static_cast<int32_t>(done + i), tokens[done + i], true};
    if (auto st = (*model)->forward(rows, *setup->memory, *setup->pool, logits.data() + done * n_vocab); !st.ok())
      return fail(st.error());
    done += n;
  }
  if (auto st = write_npy_f32(o.out, logits.data(), {static_cast<int64_t>(tokens.size()), n_vocab}); !st.ok())
    return fail(st.error());
  if (!o.mtp_out.empty()) {
    // Row k: token k with the trunk's h_nextn of position k-1 (zeros for k = 0), one batch.
    models::Model& m = **model;
    if (!m.has_mtp()) return fail(make_error("[logits] {} has no MTP head", o.model));
    if (pieces.size() != 1)
      return fail(make_error("[logits] --mtp-output needs the whole prompt in one batch (no --step or --chunks)"));
    const int64_t n = static_cast<int64_t>(tokens.size()), E = m.info().n_embd;
    std::vector<float> shifted(n * E, 0.0f);
    std::copy(m.last_hidden().begin(), m.last_hidden().end() - E, shifted.begin() + E);
    std::vector<models::BatchRow> rows(n);
    for (int64_t i = 0; i < n; ++i) rows[i] = {0, static_cast<int32_t>(i), tokens[i], true};
    if (auto st = m.forward_mtp(rows, shifted.data(), *setup->memory, *setup->pool, logits.data()); !st.ok())
      return fail(st.error());
    if (auto st = write_npy_f32(o.mtp_out, logits.data(), {n, n_vocab}); !st.ok()) return fail(st.error());
  }
  log_info("[logits] wrote {} x {} logits to {}", tokens.size(), n_vocab, o.out);
  return kExitOk;
}

CommandRegistrar reg("logits", "Write the logits of every prompt position to a .npy file", 40, [](CLI::App& app) {
  auto o = std::make_shared<Options>();
  app.add_option("-m,--model", o->model, "GGUF model file")->required();
  auto* prompt = app.add_option("--prompt", o->prompt, "Prompt text (special tokens are parsed)");
  auto* ids = app.add_option("--ids", o->ids, "Token ids, comma-separated");
  prompt->excludes(ids);
  app.add_flag("--step", o->step, "Feed one token at a time (decode path) instead of one batch");
  app.add_option("--chunks", o->chunks, "Prefill in pieces of these sizes, e.g. 100,100,100,29");
  app.add_option("-o,--output", o->out, "Output .npy file")->required();
  app.add_option("--mtp-output", o->mtp_out, "Also write the MTP head's logits (models with an MTP block)");
  o->engine.add(app, /*default_kv=*/"f32");
  app.callback([&app, prompt, ids] {
    if (prompt->count() == 0 && ids->count() == 0) throw CLI::RequiredError("--prompt or --ids");
  });
  return [o] { return run(*o); };
});

}  // namespace
}  // namespace hylo::apps
