// hylo chat in a pseudo-terminal: two turns where the second reuses the cache, Ctrl-C stops an
// answer without ending the session, Ctrl-D exits; line editing (libedit): history recalled with
// the Up arrow, Ctrl-A, continued lines and blocks, /help and unknown commands.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <regex>

#include "common/fixtures.h"

namespace hylo {
namespace {

class Pty {
 public:
  explicit Pty(const std::vector<std::string>& argv) {
    // No echo: what the test reads back is only what hylo writes.
    termios tio{};
    cfmakeraw(&tio);
    tio.c_lflag |= ISIG | ICANON;
    tio.c_iflag |= ICRNL;
    tio.c_oflag |= OPOST | ONLCR;
    tio.c_cc[VINTR] = 3;
    tio.c_cc[VEOF] = 4;
    tio.c_cc[VMIN] = 1;
    pid_ = forkpty(&fd_, nullptr, &tio, nullptr);
    if (pid_ == 0) {
      setenv("TERM", "xterm", 1);  // a terminal libedit knows, whatever runs the suite
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~Pty() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // Input goes in only once hylo waits for it in read(0): a key typed earlier reaches the terminal
  // while it is still in cooked mode, where Ctrl-D is an end-of-file marker that the line editor's
  // raw mode never sees (a person cannot type that fast; a test can).
  void send(const std::string& s) {
    wait_reading();
    send_now(s);
  }
  // Without waiting: keys for a running answer (Ctrl-C).
  void send_now(const std::string& s) { ASSERT_EQ(write(fd_, s.data(), s.size()), static_cast<ssize_t>(s.size())); }
  // Until the main thread's current system call is read() on fd 0 (/proc/PID/syscall: "0 0x0 ...").
  void wait_reading(int seconds = 60) {
    const std::string path = "/proc/" + std::to_string(pid_) + "/syscall";
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (std::chrono::steady_clock::now() < deadline) {
      std::ifstream f(path);
      if (!f) return;  // not readable here: send at once
      std::string nr, fd;
      f >> nr >> fd;  // "running" while it computes
      if (nr == "0" && fd == "0x0") return;
      poll(nullptr, 0, 5);
    }
    ADD_FAILURE() << "hylo chat never waited for input; output so far:\n" << buf_;
  }
  // Reads until `pattern` matches the output collected since the last call (or the deadline).
  // The match (and consumed(), the text up to and including it) stay valid until the next call.
  std::smatch expect(const std::string& pattern, int seconds = 120) {
    const std::regex re(pattern);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!std::regex_search(buf_, re)) {
      const int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
      if (left <= 0) {
        ADD_FAILURE() << "timed out waiting for /" << pattern << "/; output so far:\n" << buf_;
        return {};
      }
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, left) <= 0) continue;
      char chunk[4096];
      const ssize_t n = read(fd_, chunk, sizeof chunk);
      if (n <= 0) {
        ADD_FAILURE() << "terminal closed while waiting for /" << pattern << "/; output:\n" << buf_;
        return {};
      }
      buf_.append(chunk, static_cast<size_t>(n));
    }
    held_ = std::move(buf_);
    std::smatch m;
    std::regex_search(held_, m, re);
    consumed_ = m.prefix().str() + m.str(0);
    buf_ = m.suffix().str();
    return m;
  }
  const std::string& consumed() const { return consumed_; }
  int wait_exit(int seconds = 60) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (waitpid(pid_, &status, WNOHANG) == 0) {
      if (std::chrono::steady_clock::now() > deadline) {
        ADD_FAILURE() << "hylo chat did not exit; output so far:\n" << buf_;
        return -1;  // the destructor kills it
      }
      poll(nullptr, 0, 5);
    }
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buf_, held_, consumed_;
};

TEST(ChatTerminal, SecondTurnReusesTheCache) {
  const std::string model = test::fixture_model("qwen3next-tiny");
  Pty t({test::hylo_binary(), "chat", "-m", model, "--temp", "0", "-n", "8", "-c", "2048"});
  t.expect("> ");
  // Long enough to span block boundaries: the cache keeps checkpoints at multiples of 64 tokens.
  std::string question = "What is the capital of France?";
  for (int i = 0; i < 40; ++i) question += " Paris or Lyon " + std::to_string(i) + "?";
  t.send(question + "\n");
  auto m1 = t.expect(R"(\[chat\] prompt (\d+) tokens \((\d+) cached\))");
  ASSERT_FALSE(m1.empty());
  const int prompt1 = std::stoi(m1[1]), cached1 = std::stoi(m1[2]);
  EXPECT_EQ(cached1, 0);
  t.expect("> ");
  t.send("And of Germany?\n");
  auto m2 = t.expect(R"(\[chat\] prompt (\d+) tokens \((\d+) cached\))");
  ASSERT_FALSE(m2.empty());
  const int prompt2 = std::stoi(m2[1]), cached2 = std::stoi(m2[2]);
  EXPECT_GT(prompt2, prompt1);
  // The first turn's prompt comes from the cache up to its last block boundary (the state there
  // has the bits a prefill from scratch gives): only the rest of it, the answer and the new
  // message are prefilled.
  EXPECT_GE(cached2, prompt1 / 64 * 64);
  EXPECT_GT(cached2, 0);
  EXPECT_LT(prompt2 - cached2, prompt2 - prompt1 + 64);
  t.expect("> ");
  t.send("\x04");  // Ctrl-D
  EXPECT_EQ(t.wait_exit(), 0);
}

TEST(ChatTerminal, CtrlCStopsTheAnswerNotTheSession) {
  const std::string model = test::fixture_model("qwen3moe-tiny");
  Pty t({test::hylo_binary(), "chat", "-m", model, "--temp", "0", "-n", "-1", "-c", "100000"});
  t.expect("> ");
  t.send("Talk for a long time\n");
  t.expect("long time");  // the line editor's echo
  t.expect(R"(\S)");      // the answer has started
  t.send_now("\x03");     // Ctrl-C
  auto m = t.expect(R"(\[chat\] prompt \d+ tokens .* \| (\w+))");
  ASSERT_FALSE(m.empty());
  EXPECT_EQ(m[1], "cancelled");
  t.expect("> ");
  t.send("/reset\n");
  t.expect("conversation cleared");
  t.send("/exit\n");
  EXPECT_EQ(t.wait_exit(), 0);
}

TEST(ChatTerminal, LineEditingHistoryAndCommands) {
  const std::string model = test::fixture_model("qwen3moe-tiny");
  Pty t({test::hylo_binary(), "chat", "-m", model, "--temp", "0", "-n", "4", "-c", "512"});
  t.expect("> ");
  t.send("/help\n");
  t.expect(R"(/system \[TEXT\])");
  t.expect("> ");

  // An unknown command is refused with the list, and nothing goes to the model.
  t.send("/nosuch thing\n");
  t.expect(R"(unknown command /nosuch \(not sent to the model\))");
  t.expect("commands:");
  t.expect("> ");
  EXPECT_EQ(t.consumed().find("[chat] prompt"), std::string::npos);

  // Editing: Ctrl-A moves to the start of the line, so "elp" becomes "/help".
  t.send("elp\x01/h\n");
  t.expect("commands:");
  EXPECT_EQ(t.consumed().find("unknown command"), std::string::npos) << t.consumed();
  t.expect("> ");

  // A trailing backslash continues the entry on the next line.
  t.send("/system be\\\n");
  t.expect(R"(\.\.\. )");
  t.send("brief\n");
  t.expect("system message set");
  t.send("/system\n");
  t.expect("system message: be\r?\nbrief");
  t.expect("> ");

  // Ctrl-C clears the line being typed; the session goes on.
  t.send("half a thought\x03");
  t.expect(R"(\^C)");
  t.expect("> ");

  // History: Up recalls "/system", then "/system be\nbrief", then "/help" (the entry before).
  t.send("\x1b[A\x1b[A\x1b[A\n");
  t.expect("commands:");
  EXPECT_EQ(t.consumed().find("system message"), std::string::npos) << t.consumed();
  t.expect("> ");

  // A """ block is one message, sent as written: a /command line inside it is text.
  t.send("\"\"\"\n/help\nsecond line\n\"\"\"\n");
  t.expect(R"(\[chat\] prompt \d+ tokens)");
  EXPECT_EQ(t.consumed().find("commands:"), std::string::npos) << t.consumed();
  t.expect("> ");
  t.send("\x04");  // Ctrl-D
  EXPECT_EQ(t.wait_exit(), 0);
}

}  // namespace
}  // namespace hylo
