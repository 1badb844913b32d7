// HYLO_DUMP=<glob[,glob...]> writes named intermediate activations as .npy files into
// HYLO_DUMP_DIR (default ./hylo-dump), named like llama.cpp's eval callback ("attn_norm-3"),
// so a mismatch against the reference activations can be traced to its first layer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace hylo::ops {

bool dump_enabled();
// True if `name` matches a pattern (cheap when dumping is off).
bool dump_wanted(const std::string& name);
// Writes data with numpy shape `shape` (outermost first) if the name is wanted.
void dump(const std::string& name, const float* data, const std::vector<int64_t>& shape);
// "name-il" naming helper.
inline std::string layer_name(const char* name, int il) { return std::string(name) + "-" + std::to_string(il); }

}  // namespace hylo::ops
