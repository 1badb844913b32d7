// Python str semantics on UTF-8 text, as far as chat templates can observe them: Unicode
// whitespace for strip()/split(), case mapping, printability for repr(), code point indexing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hylo::chat::pystr {

// str.isspace() of one code point (what strip() and split() remove).
bool is_space(uint32_t cp);
// str.isprintable() of one code point (repr() escapes the others).
bool is_printable(uint32_t cp);
bool is_alpha(uint32_t cp);    // letter categories (str.isalpha)
bool is_decimal(uint32_t cp);  // category Nd (str.isdecimal)

std::vector<uint32_t> code_points(std::string_view s);
std::string from_code_points(const std::vector<uint32_t>& cps, size_t begin, size_t end);

// strip/lstrip/rstrip; `chars` = nullopt strips whitespace, else any of its code points.
std::string strip(std::string_view s, const std::optional<std::string>& chars, bool left = true, bool right = true);
// str.split(sep, maxsplit) / str.rsplit; sep = nullopt splits on whitespace runs. An empty
// separator is a ValueError in Python; the caller reports it.
std::vector<std::string> split(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit = -1);
std::vector<std::string> rsplit(std::string_view s, const std::optional<std::string>& sep, int64_t maxsplit = -1);
std::vector<std::string> splitlines(std::string_view s);

std::string upper(std::string_view s);
std::string lower(std::string_view s);
std::string title(std::string_view s);       // str.title()
std::string capitalize(std::string_view s);  // str.capitalize()
std::string replace(std::string_view s, std::string_view old, std::string_view with, int64_t count = -1);

// Index of `sub` in code points, or -1 (str.find / str.rfind).
int64_t find(std::string_view s, std::string_view sub, bool reverse = false);
int64_t count(std::string_view s, std::string_view sub);

}  // namespace hylo::chat::pystr
