// Prints the path of a fixture model (tests/common/fixtures.h), generating it on first use, so
// that the Node.js client tests start `hylo serve` on the same files as the C++ tests.
#include <cstdio>

#include "common/fixtures.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: server_fixture_model NAME\n");
    return 2;
  }
  const std::string path = hylo::test::fixture_model(argv[1]);
  if (path.empty()) return 1;
  std::printf("%s\n", path.c_str());
  return 0;
}
