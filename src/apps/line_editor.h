// Reading `hylo chat`'s input: on a terminal through libedit (emacs keys, history recalled with the
// arrows, Ctrl-C clears the line); otherwise plain lines from stdin, so pipes work unchanged.
#pragma once

#include <memory>
#include <string>

namespace hylo::apps {

class LineEditor {
 public:
  enum class Read { kLine, kInterrupted, kEnd };  // kInterrupted: Ctrl-C; kEnd: Ctrl-D or end of input

  // `terminal`: stdin is a terminal (editing and prompts); else lines are read as they come.
  explicit LineEditor(bool terminal);
  ~LineEditor();
  LineEditor(const LineEditor&) = delete;
  LineEditor& operator=(const LineEditor&) = delete;

  // One line, without its newline. The prompt is shown on a terminal only.
  Read read(const std::string& prompt, std::string* line);
  // Adds an entry to the history (the Up arrow recalls it); repeats of the last entry are skipped.
  void remember(const std::string& entry);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace hylo::apps
