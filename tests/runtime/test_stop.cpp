// Stop strings across token boundaries: held back until decided, never emitted.
#include <gtest/gtest.h>

#include "runtime/stop.h"

namespace hylo::runtime {
namespace {

std::string feed(StopMatcher& m, const std::vector<std::string>& pieces) {
  std::string out;
  for (const auto& p : pieces) out += m.push(p);
  return out + m.flush();
}

TEST(StopMatcher, MatchSplitAcrossPieces) {
  StopMatcher m({"</end>"});
  EXPECT_EQ(m.push("Hello </"), "Hello ");  // "</" may start the stop string
  EXPECT_EQ(m.push("en"), "");
  EXPECT_EQ(m.push("d> trailing"), "");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "</end>");
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
}

TEST(StopMatcher, FalseStartIsReleased) {
  StopMatcher m({"STOP"});
  EXPECT_EQ(feed(m, {"ST", "ART and STO", "RY"}), "START and STORY");
  EXPECT_FALSE(m.stopped());
}

TEST(StopMatcher, EarliestOfSeveralWins) {
  StopMatcher m({"bb", "a"});
  EXPECT_EQ(m.push("xxbba"), "xx");
  EXPECT_EQ(m.matched(), "bb");
}

TEST(StopMatcher, EveryByteSplitGivesTheSameResult) {
  const std::string text = "The answer is 42.\n\nUser: next";
  for (size_t cut = 0; cut <= text.size(); ++cut) {
    StopMatcher m({"\n\nUser:"});
    std::string out = m.push(text.substr(0, cut));
    out += m.push(text.substr(cut));
    out += m.flush();
    EXPECT_EQ(out, "The answer is 42.") << cut;
    EXPECT_TRUE(m.stopped());
  }
}

TEST(StopMatcher, NoStopsPassesEverything) {
  StopMatcher m({});
  EXPECT_EQ(m.push("abc"), "abc");
  StopMatcher e({""});  // empty stop strings are ignored
  EXPECT_EQ(e.push("abc"), "abc");
}

}  // namespace
}  // namespace hylo::runtime
