#include "models/decoder.h"

#include <cmath>
#include <cstring>
#include <numbers>
#include <unordered_set>

#include "base/check.h"
#include "base/huge_pages.h"
#include "base/log.h"
#include "kernels/vec.h"
#include "ops/attention.h"
#include "ops/dump.h"
#include "ops/profile.h"

namespace hylo::models {

// Activation buffers, grown to the largest batch seen and reused.
struct Workspace {
  LargeVector<float> x, a, mixed, f, ffn_out, normed;  // [n_rows][n_embd]
  LargeVector<float> proj_q, proj_k, proj_v, q, gate, attn_out, cos, sin;
  ops::ActRows act, act2;
  ops::MoeScratch moe;
};

namespace {
uint64_t tensor_bytes(const gguf::File& file) {
  uint64_t bytes = 0;
  for (const auto& t : file.tensors()) bytes += t.n_bytes;
  return bytes;
}
}  // namespace

DecoderModel::DecoderModel(gguf::File file)
    : Model(std::move(file)), images_(false), ws_(std::make_unique<Workspace>()) {}

void DecoderModel::set_load_options(const LoadOptions& options) {
  images_ = ops::WeightImages(options.repack && ops::repack_fits(tensor_bytes(file_)));
}
DecoderModel::~DecoderModel() = default;

// ---- loading ------------------------------------------------------------------------------------

Status DecoderModel::load_common(TensorLoader& tl, const std::string& ffn_norm_name, bool shared_expert,
                                 int64_t n_ff_exp, int64_t n_ff_shexp) {
  HYLO_ASSIGN_OR_RETURN(token_embd_, tl.table("token_embd.weight", n_embd_, n_vocab_));
  HYLO_ASSIGN_OR_RETURN(output_norm_, tl.vector("output_norm.weight", n_embd_));
  if (tl.has("output.weight")) {
    HYLO_ASSIGN_OR_RETURN(output_, tl.matrix("output.weight", n_embd_, n_vocab_));
  } else {
    if (token_embd_.kernel == nullptr)
      return make_error("[model] {}: tied LM head: token_embd type {} has no matrix kernel", file_.path(),
                        tensor_type_name(token_embd_.type));
    output_ = token_embd_;
    // The embedding rows stay in place for the lookups; the LM head gets an image of its own.
    images_.add(output_, /*release_rows=*/false);
  }
  layers_.resize(n_layer_);
  for (int64_t il = 0; il < n_layer_; ++il)
    HYLO_TRY(load_block_ffn(tl, il, ffn_norm_name, shared_expert, n_ff_exp, n_ff_shexp));
  return ok_status();
}

Status DecoderModel::load_block_ffn(TensorLoader& tl, int64_t il, const std::string& ffn_norm_name, bool shared_expert,
                                    int64_t n_ff_exp, int64_t n_ff_shexp) {
  const std::string p = fmt::format("blk.{}.", il);
  Layer& L = layers_.at(il);
  HYLO_ASSIGN_OR_RETURN(L.attn_norm, tl.vector(p + "attn_norm.weight", n_embd_));
  HYLO_ASSIGN_OR_RETURN(L.ffn_norm, tl.vector(p + ffn_norm_name + ".weight", n_embd_));
  ops::MoeWeights& m = L.moe;
  HYLO_ASSIGN_OR_RETURN(m.router, tl.matrix(p + "ffn_gate_inp.weight", n_embd_, n_expert_));
  if (tl.has(p + "ffn_gate_up_exps.weight")) {
    // Fused gate/up (--fuse-gate-up-exps): gate = first n_ff rows of each expert, up = the rest.
    HYLO_ASSIGN_OR_RETURN(ops::ExpertWeight gu,
                          tl.experts(p + "ffn_gate_up_exps.weight", n_embd_, 2 * n_ff_exp, n_expert_));
    m.gate = gu;
    m.gate.first = gu.first.rows(0, n_ff_exp);
    m.up = gu;
    m.up.first = gu.first.rows(n_ff_exp, n_ff_exp);
  } else {
    HYLO_ASSIGN_OR_RETURN(m.gate, tl.experts(p + "ffn_gate_exps.weight", n_embd_, n_ff_exp, n_expert_));
    HYLO_ASSIGN_OR_RETURN(m.up, tl.experts(p + "ffn_up_exps.weight", n_embd_, n_ff_exp, n_expert_));
  }
  HYLO_ASSIGN_OR_RETURN(m.down, tl.experts(p + "ffn_down_exps.weight", n_ff_exp, n_embd_, n_expert_));
  m.n_used = static_cast<int>(n_expert_used_);
  if (shared_expert) {
    HYLO_ASSIGN_OR_RETURN(m.shexp_gate_inp, tl.vector(p + "ffn_gate_inp_shexp.weight", n_embd_));
    HYLO_ASSIGN_OR_RETURN(m.shexp_gate, tl.matrix(p + "ffn_gate_shexp.weight", n_embd_, n_ff_shexp));
    HYLO_ASSIGN_OR_RETURN(m.shexp_up, tl.matrix(p + "ffn_up_shexp.weight", n_embd_, n_ff_shexp));
    HYLO_ASSIGN_OR_RETURN(m.shexp_down, tl.matrix(p + "ffn_down_shexp.weight", n_ff_shexp, n_embd_));
  }
  return ok_status();
}

Result<AttentionWeights> DecoderModel::load_attention(TensorLoader& tl, int il, const AttentionDims& d, bool gated) {
  const std::string p = fmt::format("blk.{}.", il);
  AttentionWeights w;
  w.gated = gated;
  HYLO_ASSIGN_OR_RETURN(w.q, tl.matrix(p + "attn_q.weight", n_embd_, int64_t{d.n_head} * d.head_dim * (gated ? 2 : 1)));
  HYLO_ASSIGN_OR_RETURN(w.k, tl.matrix(p + "attn_k.weight", n_embd_, int64_t{d.n_kv_head} * d.head_dim));
  HYLO_ASSIGN_OR_RETURN(w.v, tl.matrix(p + "attn_v.weight", n_embd_, int64_t{d.n_kv_head} * d.head_dim));
  HYLO_ASSIGN_OR_RETURN(w.out, tl.matrix(p + "attn_output.weight", int64_t{d.n_head} * d.head_dim, n_embd_));
  HYLO_ASSIGN_OR_RETURN(w.q_norm, tl.vector(p + "attn_q_norm.weight", d.head_dim));
  HYLO_ASSIGN_OR_RETURN(w.k_norm, tl.vector(p + "attn_k_norm.weight", d.head_dim));
  return w;
}

Status DecoderModel::load_nextn(TensorLoader& tl, int layer, const AttentionDims& d, const std::string& ffn_norm_name,
                                bool shared_expert, int64_t n_ff_exp, int64_t n_ff_shexp) {
  const std::string p = fmt::format("blk.{}.nextn.", layer);
  nextn_.layer = layer;
  layers_.resize(layer + 1);
  HYLO_TRY(load_block_ffn(tl, layer, ffn_norm_name, shared_expert, n_ff_exp, n_ff_shexp));
  HYLO_ASSIGN_OR_RETURN(nextn_.attn, load_attention(tl, layer, d, /*gated=*/true));
  HYLO_ASSIGN_OR_RETURN(nextn_.eh_proj, tl.matrix(p + "eh_proj.weight", 2 * n_embd_, n_embd_));
  HYLO_ASSIGN_OR_RETURN(nextn_.enorm, tl.vector(p + "enorm.weight", n_embd_));
  HYLO_ASSIGN_OR_RETURN(nextn_.hnorm, tl.vector(p + "hnorm.weight", n_embd_));
  if (tl.has(p + "shared_head_norm.weight")) {
    HYLO_ASSIGN_OR_RETURN(nextn_.shared_head_norm, tl.vector(p + "shared_head_norm.weight", n_embd_));
  } else {
    nextn_.shared_head_norm = output_norm_;
  }
  if (tl.has(p + "embed_tokens.weight") || tl.has(p + "shared_head_head.weight"))
    return make_error("[model] {}: MTP heads with their own embedding or LM head are not supported", file_.path());
  layout_.n_layer = std::max(layout_.n_layer, layer + 1);
  layout_.kv.push_back({layer, d.n_kv_head, d.head_dim});
  return ok_status();
}

void DecoderModel::finish_info(const TensorLoader& tl) {
  info_.arch = file_.get_string("general.architecture").value_or("");
  info_.name = file_.get_string("general.name").value_or("");
  info_.path = file_.path();
  info_.repacked_bytes = images_.bytes();
  info_.repack_seconds = images_.build_seconds();
  info_.n_vocab = n_vocab_;
  info_.n_embd = n_embd_;
  info_.n_layer = n_layer_;
  info_.n_ctx_train = n_ctx_train_;
  info_.n_expert = n_expert_;
  info_.n_expert_used = n_expert_used_;
  info_.weight_bytes = 0;
  for (const auto& t : file_.tensors()) info_.weight_bytes += t.n_bytes;
  // Bytes read per decoded token: everything loaded, with the expert tensors scaled to the
  // experts used, minus the embedding table (one row is read) and any MTP block.
  uint64_t active = 0, params = 0;
  for (const auto& t : file_.tensors()) {
    if (t.name.rfind("blk.", 0) == 0) {
      const int64_t il = std::atoll(t.name.c_str() + 4);
      if (il >= n_layer_) continue;
    }
    if (t.name == "token_embd.weight") {
      active += t.n_bytes / static_cast<uint64_t>(n_vocab_);
      if (output_.data == token_embd_.data) {
        active += t.n_bytes;
        params += static_cast<uint64_t>(t.n_elements());
      }
      continue;
    }
    const bool expert = t.name.find("_exps.") != std::string::npos;
    const uint64_t scale_num = expert ? static_cast<uint64_t>(n_expert_used_) : 1;
    const uint64_t scale_den = expert ? static_cast<uint64_t>(n_expert_) : 1;
    active += t.n_bytes * scale_num / scale_den;
    if (t.n_dims >= 2) params += static_cast<uint64_t>(t.n_elements()) * scale_num / scale_den;
  }
  info_.active_weight_bytes = active;
  info_.active_params = params;
  info_.lm_head_params = static_cast<uint64_t>(n_embd_) * static_cast<uint64_t>(n_vocab_);
  for (const auto& name : tl.unused()) log_warn("[model] {}: tensor {} is not used", file_.path(), name);
}

// ---- forward ------------------------------------------------------------------------------------

Result<std::vector<SeqRun>> DecoderModel::validate(std::span<const BatchRow> rows, const Memory& memory) const {
  if (rows.empty()) return make_error("[model] empty batch");
  std::vector<SeqRun> runs;
  std::unordered_set<int32_t> seen;
  for (size_t i = 0; i < rows.size(); ++i) {
    const BatchRow& r = rows[i];
    if (r.seq < 0 || r.seq >= memory.n_seq())
      return make_error("[model] batch row {}: sequence {} outside [0, {})", i, r.seq, memory.n_seq());
    if (r.token < 0 || r.token >= n_vocab_)
      return make_error("[model] batch row {}: token {} outside the vocabulary [0, {})", i, r.token, n_vocab_);
    if (runs.empty() || runs.back().seq != r.seq) {
      if (!seen.insert(r.seq).second)
        return make_error("[model] batch row {}: sequence {} appears in two separate runs", i, r.seq);
      const int32_t len = memory.seq_len(r.seq);
      if (r.pos != len)
        return make_error("[model] batch row {}: sequence {} continues at position {}, row has position {}", i, r.seq,
                          len, r.pos);
      runs.push_back({r.seq, static_cast<int64_t>(i), 0, r.pos});
    } else if (r.pos != runs.back().pos0 + runs.back().n) {
      return make_error("[model] batch row {}: position {} does not follow {} in sequence {}", i, r.pos,
                        runs.back().pos0 + runs.back().n - 1, r.seq);
    }
    if (r.pos >= memory.n_ctx())
      return make_error("[model] batch row {}: position {} is beyond the context size {} of sequence {}", i, r.pos,
                        memory.n_ctx(), r.seq);
    runs.back().n++;
  }
  return runs;
}

Status DecoderModel::forward(std::span<const BatchRow> rows, Memory& memory, ThreadPool& pool, float* logits) {
  HYLO_ASSIGN_OR_RETURN(std::vector<SeqRun> runs, validate(rows, memory));
  ops::PhaseTimer timer(ops::Phase::kForward);
  const kernels::VecKernels& K = kernels::vec();
  Workspace& w = *ws_;
  const int64_t T = static_cast<int64_t>(rows.size()), E = n_embd_;
  w.x.resize(T * E);
  w.a.resize(T * E);
  w.mixed.resize(T * E);
  w.f.resize(T * E);
  w.ffn_out.resize(T * E);

  for (int64_t t = 0; t < T; ++t)
    kernels::dequantize_row(token_embd_.type, token_embd_.row(rows[t].token), w.x.data() + t * E, E);
  ops::dump("embd", w.x.data(), {T, E});

  // x += d, split over threads at multiples of every vector width.
  auto add_rows = [&](const float* d) {
    pool.parallel_for(T * E, kElementGrain, [&](int64_t b, int64_t e) {
      float* x = w.x.data();
      for (int64_t i = b; i < e; ++i) x[i] += d[i];
    });
  };
  auto norm_rows = [&](const float* in, const float* weight, float* out) {
    pool.parallel_for(T, 16, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) K.rms_norm(in + t * E, weight, out + t * E, E, norm_eps_);
    });
  };

  for (int il = 0; il < n_layer_; ++il) {
    const Layer& L = layers_[il];
    norm_rows(w.x.data(), L.attn_norm.data(), w.a.data());
    ops::dump(ops::layer_name("attn_norm", il), w.a.data(), {T, E});
    mix(il, w.a.data(), w.mixed.data(), runs, rows, memory, pool);
    add_rows(w.mixed.data());  // h = x + mixer
    ops::dump(ops::layer_name("attn_residual", il), w.x.data(), {T, E});
    norm_rows(w.x.data(), L.ffn_norm.data(), w.f.data());
    ops::dump(ops::layer_name("attn_post_norm", il), w.f.data(), {T, E});
    ops::moe_forward(pool, L.moe, w.f.data(), T, w.ffn_out.data(), w.moe, il);
    add_rows(w.ffn_out.data());  // x' = h + MoE
    ops::dump(ops::layer_name("l_out", il), w.x.data(), {T, E});
  }
  for (const SeqRun& r : runs) memory.set_seq_len(r.seq, r.pos0 + static_cast<int32_t>(r.n));

  // Final norm and LM head for the requested rows only.
  std::vector<int64_t> out_rows;
  for (int64_t t = 0; t < T; ++t)
    if (rows[t].logits) out_rows.push_back(t);
  const int64_t n_out = static_cast<int64_t>(out_rows.size());
  hidden_out_.resize(n_out * E);
  if (options_.keep_all_hidden) {
    all_hidden_.resize(T * E);
    norm_rows(w.x.data(), output_norm_.data(), all_hidden_.data());
    for (int64_t i = 0; i < n_out; ++i)
      std::memcpy(hidden_out_.data() + i * E, all_hidden_.data() + out_rows[i] * E, sizeof(float) * E);
  } else {
    all_hidden_.clear();
    for (int64_t i = 0; i < n_out; ++i)
      K.rms_norm(w.x.data() + out_rows[i] * E, output_norm_.data(), hidden_out_.data() + i * E, E, norm_eps_);
  }
  ops::dump("result_norm", hidden_out_.data(), {n_out, E});
  if (n_out > 0) ops::matmul(pool, output_, hidden_out_.data(), n_out, logits, &w.act);
  return ok_status();
}

// ---- MTP head ----------------------------------------------------------------------------------

Status DecoderModel::forward_nextn(std::span<const BatchRow> rows, const float* hidden, Memory& memory,
                                   ThreadPool& pool, float* logits, const AttentionDims& d) {
  if (nextn_.layer < 0) return make_error("[model] this model has no MTP head");
  const int L = nextn_.layer;
  std::vector<SeqRun> runs;
  for (size_t i = 0; i < rows.size(); ++i) {
    const BatchRow& r = rows[i];
    if (r.seq < 0 || r.seq >= memory.n_seq() || r.token < 0 || r.token >= n_vocab_ || r.pos >= memory.n_ctx())
      return make_error("[model] MTP row {}: sequence {}, token {} or position {} out of range", i, r.seq, r.token,
                        r.pos);
    if (runs.empty() || runs.back().seq != r.seq) {
      const int32_t len = memory.kv(L, r.seq).size();
      if (r.pos > len)
        return make_error("[model] MTP row {}: sequence {} has {} MTP positions, row has position {}", i, r.seq, len,
                          r.pos);
      runs.push_back({r.seq, static_cast<int64_t>(i), 0, r.pos});
    } else if (r.pos != runs.back().pos0 + runs.back().n) {
      return make_error("[model] MTP row {}: positions of sequence {} must be consecutive", i, r.seq);
    }
    runs.back().n++;
  }
  const kernels::VecKernels& K = kernels::vec();
  Workspace& w = *ws_;
  const int64_t T = static_cast<int64_t>(rows.size()), E = n_embd_;
  // c = eh_proj · [enorm(embedding) | hnorm(hidden)]
  std::vector<float> cat(T * 2 * E);
  w.x.resize(T * E);
  w.a.resize(T * E);
  w.mixed.resize(T * E);
  w.f.resize(T * E);
  w.ffn_out.resize(T * E);
  for (int64_t t = 0; t < T; ++t) {
    float* e = cat.data() + t * 2 * E;
    kernels::dequantize_row(token_embd_.type, token_embd_.row(rows[t].token), e, E);
    K.rms_norm(e, nextn_.enorm.data(), e, E, norm_eps_);
    K.rms_norm(hidden + t * E, nextn_.hnorm.data(), e + E, E, norm_eps_);
  }
  ops::matmul(pool, nextn_.eh_proj, cat.data(), T, w.x.data(), &w.act);
  const Layer& B = layers_[L];
  for (int64_t t = 0; t < T; ++t) K.rms_norm(w.x.data() + t * E, B.attn_norm.data(), w.a.data() + t * E, E, norm_eps_);
  attention(L, nextn_.attn, d, w.a.data(), w.mixed.data(), runs, rows, memory, pool);
  for (int64_t i = 0; i < T * E; ++i) w.x[i] += w.mixed[i];
  for (int64_t t = 0; t < T; ++t) K.rms_norm(w.x.data() + t * E, B.ffn_norm.data(), w.f.data() + t * E, E, norm_eps_);
  ops::moe_forward(pool, B.moe, w.f.data(), T, w.ffn_out.data(), w.moe, L);
  for (int64_t i = 0; i < T * E; ++i) w.x[i] += w.ffn_out[i];
  hidden_out_.resize(T * E);
  for (int64_t t = 0; t < T; ++t)
    K.rms_norm(w.x.data() + t * E, nextn_.shared_head_norm.data(), hidden_out_.data() + t * E, E, norm_eps_);
  // The LM head only for the rows that want logits (catch-up rows only fill the head's cache).
  std::vector<float> head_in;
  int64_t n_out = 0;
  for (int64_t t = 0; t < T; ++t) n_out += rows[t].logits;
  const float* in = hidden_out_.data();
  if (n_out != T) {
    head_in.resize(n_out * E);
    int64_t i = 0;
    for (int64_t t = 0; t < T; ++t)
      if (rows[t].logits) std::memcpy(head_in.data() + (i++) * E, hidden_out_.data() + t * E, sizeof(float) * E);
    in = head_in.data();
  }
  if (n_out > 0) ops::matmul(pool, output_, in, n_out, logits, &w.act);
  return ok_status();
}

// ---- attention mixer ----------------------------------------------------------------------------

void DecoderModel::attention(int il, const AttentionWeights& aw, const AttentionDims& d, const float* a, float* out,
                             std::span<const SeqRun> runs, std::span<const BatchRow> rows, Memory& memory,
                             ThreadPool& pool) {
  const kernels::VecKernels& K = kernels::vec();
  Workspace& w = *ws_;
  const int64_t T = static_cast<int64_t>(rows.size());
  const int64_t hd = d.head_dim, nq = int64_t{d.n_head} * hd, nkv = int64_t{d.n_kv_head} * hd;
  const int64_t pw = aw.q.n_out;  // query projection width (2·nq when gated)
  w.proj_q.resize(T * pw);
  w.proj_k.resize(T * nkv);
  w.proj_v.resize(T * nkv);
  ops::convert_rows(pool, *aw.q.kernel, a, T, n_embd_, n_embd_, &w.act);
  const ops::ActRows* in_kv = &w.act;
  if (aw.k.kernel->act != aw.q.kernel->act) {
    ops::convert_rows(pool, *aw.k.kernel, a, T, n_embd_, n_embd_, &w.act2);
    in_kv = &w.act2;
  }
  const ops::MatmulJob jobs[] = {
      {&aw.q, &w.act, w.proj_q.data(), pw}, {&aw.k, in_kv, w.proj_k.data(), nkv}, {&aw.v, in_kv, w.proj_v.data(), nkv}};
  HYLO_CHECK(aw.v.kernel->act == aw.k.kernel->act, "attn_k and attn_v need the same activation format");
  ops::matmul(pool, jobs);
  ops::dump(ops::layer_name("Qcur_full", il), w.proj_q.data(), {T, pw});

  // Split query / gate, QK-norm (before RoPE), RoPE, then store K and V.
  w.q.resize(T * nq);
  w.gate.resize(aw.gated ? T * nq : 0);
  const int64_t half_rot = rope_.n_rot / 2;
  w.cos.resize(pool.size() * half_rot);  // one table per thread
  w.sin.resize(pool.size() * half_rot);
  pool.parallel_for_threads(T, 4, [&](int ith, int64_t b, int64_t e) {
    float* cos = w.cos.data() + ith * half_rot;
    float* sin = w.sin.data() + ith * half_rot;
    for (int64_t t = b; t < e; ++t) {
      rope_tables(rope_, rows[t].pos, cos, sin);
      for (int h = 0; h < d.n_head; ++h) {
        const float* src = w.proj_q.data() + t * pw + (aw.gated ? 2 * h * hd : h * hd);
        float* q = w.q.data() + t * nq + h * hd;
        K.rms_norm(src, aw.q_norm.data(), q, hd, norm_eps_);
        K.rope_neox(q, cos, sin, rope_.n_rot);
        if (aw.gated) std::memcpy(w.gate.data() + t * nq + h * hd, src + hd, sizeof(float) * hd);
      }
      for (int h = 0; h < d.n_kv_head; ++h) {
        float* k = w.proj_k.data() + t * nkv + h * hd;
        K.rms_norm(k, aw.k_norm.data(), k, hd, norm_eps_);
        K.rope_neox(k, cos, sin, rope_.n_rot);
      }
    }
  });
  ops::dump(ops::layer_name("Qcur", il), w.q.data(), {T, d.n_head, hd});
  ops::dump(ops::layer_name("Kcur", il), w.proj_k.data(), {T, d.n_kv_head, hd});
  std::vector<ops::AttentionRun> attn_runs;
  w.attn_out.resize(T * nq);
  for (const SeqRun& r : runs) {
    ops::KvSeqCache& cache = memory.kv(il, r.seq);
    cache.truncate(r.pos0);  // drop anything past the sequence's length (e.g. a failed batch)
    for (int64_t i = 0; i < r.n; ++i)
      cache.store(r.pos0 + static_cast<int32_t>(i), w.proj_k.data() + (r.row0 + i) * nkv,
                  w.proj_v.data() + (r.row0 + i) * nkv);
    attn_runs.push_back({&cache, w.q.data() + r.row0 * nq, w.attn_out.data() + r.row0 * nq, r.n, r.pos0});
  }
  ops::attention(pool, attn_runs, {d.n_head, d.n_kv_head, d.head_dim, d.scale});
  ops::dump(ops::layer_name("attn_pregate", il), w.attn_out.data(), {T, nq});
  if (aw.gated) {
    pool.parallel_for(T * nq, kElementGrain, [&](int64_t b, int64_t e) {
      K.mul_sigmoid(w.attn_out.data() + b, w.gate.data() + b, w.attn_out.data() + b, e - b);
    });
    ops::dump(ops::layer_name("attn_gated", il), w.attn_out.data(), {T, nq});
  }
  ops::matmul(pool, aw.out, w.attn_out.data(), T, out, &w.act);
  ops::dump(ops::layer_name("attn_output", il), out, {T, n_embd_});
}

}  // namespace hylo::models
