// What the emit-c tests share (tests/compile/test_emit_c*.cc): the system C compiler the build
// configured, running a shell command, reading a file, and emitting a program into a folder and
// building it as C99 or as C++17.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "compile/emit_c.h"
#include "tests/temp_dir.h"

namespace finch::test {

#ifdef FINCH_C_COMPILER
inline const char* const kCompiler = FINCH_C_COMPILER;
#else
inline const char* const kCompiler = "";
#endif

inline int shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

struct Built {
  std::string exe, error;
};

// Builds the net.c and net_main.c in dir with the system C compiler: as C99, or as C++17 (the
// same .c files through the C++ compiler driver, `-x c++`).
inline Built build_emitted(const finch::test::TempDir& dir, bool as_cxx = false) {
  const std::string exe = dir / (as_cxx ? "net_cxx" : "net");
  const std::string lang = as_cxx ? " -x c++ -std=c++17" : " -std=c99 -pedantic";
  const std::string cmd = std::string(kCompiler) + lang + " -O2 -Wall -Wextra -Werror -o " + exe + " " + (dir / "net.c") +
                          " " + (dir / "net_main.c") + (as_cxx ? " -x none" : "") + " -lm 2> " + (dir / "cc.txt");
  if (shell(cmd) != 0) return {"", slurp(dir / "cc.txt")};
  return {exe, ""};
}

// Emits g into dir and builds it with the system C compiler: as C99, or as C++17 (the same .c
// files through the C++ compiler driver, `-x c++`).
inline Built build(const runtime::Graph& g, const finch::test::TempDir& dir, bool as_cxx = false) {
  compile::write_emitted_c(compile::emit_c(g, "net", "test program"), dir.str());
  return build_emitted(dir, as_cxx);
}

}  // namespace finch::test

#define SKIP_WITHOUT_COMPILER()                                                              \
  if (std::string(finch::test::kCompiler).empty())                                           \
    GTEST_SKIP() << "no C compiler was configured (CMAKE_C_COMPILER)";                       \
  if (finch::test::shell(std::string(finch::test::kCompiler) + " --version > /dev/null 2>&1") != 0) \
  GTEST_SKIP() << "the C compiler " << finch::test::kCompiler << " does not run here"
