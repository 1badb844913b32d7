#include "apps/memory_fit.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "base/strings.h"

namespace hylo::apps {
namespace {

std::string kv_summary(const FitInputs& in, uint64_t bytes) {
  return fmt::format("KV cache {} ({} tokens × {} sequence{}, K {} V {})", format_bytes(bytes),
                     format_count(static_cast<uint64_t>(in.n_ctx)), in.n_seq, in.n_seq == 1 ? "" : "s",
                     tensor_type_name(in.type_k), tensor_type_name(in.type_v));
}

}  // namespace

FitReport check_fit(const models::Model& model, const FitInputs& in) {
  FitReport r;
  r.need = models::memory_need(model, in.n_ctx, in.n_seq, in.type_k, in.type_v, in.n_batch);
  const models::MemoryNeed& n = r.need;
  r.fits = n.total() <= in.available;
  r.summary = fmt::format("weights {} + {} + recurrent state {} + compute buffers {} = {}, available {}",
                          format_bytes(n.weights), kv_summary(in, n.kv), format_bytes(n.state), format_bytes(n.compute),
                          format_bytes(n.total()), format_bytes(in.available));
  if (r.fits) return r;

  const uint64_t fixed = n.state + n.compute;
  std::vector<std::string> lines;
  // 1. A smaller quantization: the weights' share of what is left beside the cache and buffers.
  if (in.available > n.kv + fixed)
    lines.push_back(
        fmt::format("a smaller quantization of the model: weights up to {} fit beside this context "
                    "(these take {})",
                    format_bytes(in.available - n.kv - fixed), format_bytes(n.weights)));
  else
    lines.push_back(
        "a smaller quantization alone is not enough at this context: the KV cache, state and buffers "
        "already exceed the memory");
  // 2. A smaller context with the same cache types.
  const uint64_t per_token =
      std::max<uint64_t>(1, model.memory_layout().kv_bytes_per_token(in.type_k, in.type_v) * in.n_seq);
  if (in.available > n.weights + fixed) {
    const int64_t ctx = static_cast<int64_t>((in.available - n.weights - fixed) / per_token) / 256 * 256;
    if (ctx >= 256 && ctx < in.n_ctx)
      lines.push_back(fmt::format("a smaller context: hylo {} -c {} (KV cache {})", in.command, ctx,
                                  format_bytes(per_token * static_cast<uint64_t>(ctx))));
  }
  // 3. A quantized KV cache (q8_0 halves it, q4_0 quarters it).
  for (TensorType t : {TensorType::kQ8_0, TensorType::kQ4_0}) {
    if (!model.memory_layout().kv_type_problem(t, t).empty()) continue;
    const models::MemoryNeed q = models::memory_need(model, in.n_ctx, in.n_seq, t, t, in.n_batch);
    if (q.kv >= n.kv) continue;
    const std::string flags = fmt::format("-ctk {0} -ctv {0}", tensor_type_name(t));
    if (q.total() <= in.available) {
      lines.push_back(fmt::format("a quantized KV cache: hylo {} {} (KV cache {} instead of {}; total {})", in.command,
                                  flags, format_bytes(q.kv), format_bytes(n.kv), format_bytes(q.total())));
      break;
    }
    if (t == TensorType::kQ4_0)
      lines.push_back(
          fmt::format("a quantized KV cache ({}) saves {}, not enough on its own", flags, format_bytes(n.kv - q.kv)));
  }
  // 4. Streaming the weights from disk: what does not stay resident is read again per token.
  const uint64_t weight_room = in.available > n.kv + fixed ? in.available - n.kv - fixed : 0;
  const double resident = n.weights > 0 ? std::min(1.0, static_cast<double>(weight_room) / n.weights) : 1.0;
  const double from_disk = static_cast<double>(model.info().active_weight_bytes) * (1.0 - resident);
  if (in.disk_read_gbs > 0 && from_disk > 0) {
    r.streaming_tok_s = in.disk_read_gbs * 1e9 / from_disk;
    lines.push_back(fmt::format(
        "stream the weights from disk: hylo {} --mmap (about {:.2g} tokens/s: {} of the {} a token reads come "
        "from disk at {:.2g} GB/s)",
        in.command, r.streaming_tok_s, format_bytes(static_cast<uint64_t>(from_disk)),
        format_bytes(model.info().active_weight_bytes), in.disk_read_gbs));
  } else {
    lines.push_back(
        fmt::format("stream the weights from disk: hylo {} --mmap (slow: every token reads the weights "
                    "that do not stay in memory from disk)",
                    in.command));
  }
  for (const std::string& l : lines) r.options += "  - " + l + "\n";
  return r;
}

double measure_file_read_gbs(const std::string& path, uint64_t bytes) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  const off_t size = lseek(fd, 0, SEEK_END);
  if (size <= 0) {
    ::close(fd);
    return 0;
  }
  const uint64_t n = std::min<uint64_t>(bytes, static_cast<uint64_t>(size));
  const off_t start = static_cast<off_t>((static_cast<uint64_t>(size) - n) / 2 / 4096 * 4096);
  // Pages of this span leave the page cache (clean file pages: nothing is lost) so the read
  // comes from the disk.
  posix_fadvise(fd, start, static_cast<off_t>(n), POSIX_FADV_DONTNEED);
  std::vector<uint8_t> buf(4ull << 20);
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t done = 0;
  while (done < n) {
    const ssize_t got =
        pread(fd, buf.data(), std::min<uint64_t>(buf.size(), n - done), start + static_cast<off_t>(done));
    if (got <= 0) break;
    done += static_cast<uint64_t>(got);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  return done > 0 && seconds > 0 ? static_cast<double>(done) / seconds / 1e9 : 0;
}

}  // namespace hylo::apps
