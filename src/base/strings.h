// Small string helpers shared across layers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hylo {

std::vector<std::string> split(std::string_view s, char sep);
std::string_view trim(std::string_view s);
bool starts_with(std::string_view s, std::string_view prefix);
bool ends_with(std::string_view s, std::string_view suffix);
// "1.5 GiB", "512 KiB", "17 B"
std::string format_bytes(uint64_t bytes);
// "1,234,567"
std::string format_count(uint64_t n);
// Glob match with '*' and '?' (used by HYLO_DUMP patterns and filters).
// A Prometheus label value: '"' and '\\' escaped.
std::string prometheus_label(std::string_view s);

// Compares without an early exit, so the time taken does not tell how much of a secret matched.
bool same_secret(std::string_view a, std::string_view b);

bool glob_match(std::string_view pattern, std::string_view text);

}  // namespace hylo
