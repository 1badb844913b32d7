#include <gtest/gtest.h>

#include "base/strings.h"

namespace hylo {
namespace {

TEST(Strings, GlobMatch) {
  EXPECT_TRUE(glob_match("*", "anything"));
  EXPECT_TRUE(glob_match("blk.3.*", "blk.3.attn_norm"));
  EXPECT_TRUE(glob_match("attn_norm-?", "attn_norm-3"));
  EXPECT_FALSE(glob_match("attn_norm-?", "attn_norm-13"));
  EXPECT_TRUE(glob_match("*norm*", "post_attention_norm-2"));
  EXPECT_FALSE(glob_match("l_out-*", "attn_out-1"));
}

TEST(Strings, Formatting) {
  EXPECT_EQ(format_count(0), "0");
  EXPECT_EQ(format_count(262144), "262,144");
  EXPECT_EQ(format_count(1234567), "1,234,567");
  EXPECT_EQ(format_bytes(512), "512 B");
  EXPECT_EQ(format_bytes(24ull << 30), "24.0 GiB");
  EXPECT_EQ(split("a,b,,c", ','), (std::vector<std::string>{"a", "b", "", "c"}));
  EXPECT_EQ(trim("  x y \n"), "x y");
}

}  // namespace
}  // namespace hylo
