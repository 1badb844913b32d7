// Stop strings matched across token boundaries: text is released only once it can no longer be
// the start of a stop string, and a stop string itself is never emitted.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hylo::runtime {

class StopMatcher {
 public:
  explicit StopMatcher(std::vector<std::string> stops);

  // Feeds generated text; returns the text that is safe to emit now. After a match, stopped()
  // is true, everything before the stop string has been returned and nothing after it will be.
  std::string push(std::string_view text);
  // End of generation: whatever was held back (it did not turn into a stop string).
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }

 private:
  std::vector<std::string> stops_;
  std::string pending_;
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace hylo::runtime
