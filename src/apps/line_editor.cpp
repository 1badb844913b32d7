// libedit (BSD-licensed; GNU readline would make the binary GPL) behind LineEditor. On a terminal
// SIGINT only sets a flag for the editor's whole life (a generation installs its own handler and
// restores this one), so a Ctrl-C between reading a line and the answer starting does not end the
// program. While a line is edited it interrupts the read() system call (no SA_RESTART), which makes
// el_gets() return; the flag tells that apart from an error.
#include "apps/line_editor.h"

#include <histedit.h>

#include <csignal>
#include <cstdio>
#include <iostream>

namespace hylo::apps {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;

void on_sigint(int) { g_interrupted = 1; }

}  // namespace

struct LineEditor::Impl {
  EditLine* el = nullptr;
  History* history = nullptr;
  std::string prompt;
  std::string last_entry;
  struct sigaction old_sigint {};

  static char* prompt_of(EditLine* el) {
    Impl* self = nullptr;
    el_get(el, EL_CLIENTDATA, &self);
    return self ? self->prompt.data() : const_cast<char*>("");
  }
};

LineEditor::LineEditor(bool terminal) : impl_(std::make_unique<Impl>()) {
  if (!terminal) return;
  Impl& d = *impl_;
  d.el = el_init("hylo", stdin, stderr, stderr);
  if (!d.el) return;  // no usable terminal: plain lines
  d.history = history_init();
  HistEvent ev;
  history(d.history, &ev, H_SETSIZE, 1000);
  el_set(d.el, EL_CLIENTDATA, &d);
  el_set(d.el, EL_PROMPT, &Impl::prompt_of);
  el_set(d.el, EL_EDITOR, "emacs");
  el_set(d.el, EL_HIST, history, d.history);
  el_source(d.el, nullptr);  // the user's ~/.editrc, as other libedit programs read it
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: a read in progress returns EINTR
  sigaction(SIGINT, &sa, &d.old_sigint);
}

LineEditor::~LineEditor() {
  if (impl_->el) {
    sigaction(SIGINT, &impl_->old_sigint, nullptr);
    el_end(impl_->el);
  }
  if (impl_->history) history_end(impl_->history);
}

LineEditor::Read LineEditor::read(const std::string& prompt, std::string* line) {
  Impl& d = *impl_;
  if (!d.el) {
    if (!std::getline(std::cin, *line)) return Read::kEnd;
    return Read::kLine;
  }
  d.prompt = prompt;
  int count = 0;
  const char* text = nullptr;
  g_interrupted = 0;  // a Ctrl-C before this prompt was for an answer, not for this line
  text = el_gets(d.el, &count);
  if (g_interrupted) {
    el_reset(d.el);
    std::fputs("^C\n", stderr);
    return Read::kInterrupted;
  }
  if (text == nullptr || count <= 0) {
    std::fputs("\n", stderr);
    return Read::kEnd;
  }
  line->assign(text, static_cast<size_t>(count));
  if (!line->empty() && line->back() == '\n') line->pop_back();
  return Read::kLine;
}

void LineEditor::remember(const std::string& entry) {
  Impl& d = *impl_;
  if (!d.history || entry.empty() || entry == d.last_entry) return;
  HistEvent ev;
  history(d.history, &ev, H_ENTER, entry.c_str());
  d.last_entry = entry;
}

}  // namespace hylo::apps
