// Errors: finch::Error for bad input at API boundaries, FINCH_CHECK/FINCH_DCHECK for invariants.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace finch {

// An exception whose message is one full sentence: which op, what was expected, what was found.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {
// Concatenates any streamable values into one string ("conv2d: expected ", 4, " dims").
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  (os << ... << args);
  return os.str();
}
[[noreturn]] void check_failed(const char* file, int line, const char* cond, const std::string& msg);
}  // namespace detail

// Throws finch::Error with the message built from the arguments: finch::fail("add: ", ...).
template <typename... Args>
[[noreturn]] void fail(const Args&... args) {
  throw Error(detail::cat(args...));
}

}  // namespace finch

// FINCH_CHECK(cond, parts...) throws finch::Error naming file:line, the condition and the
// message parts (operand values). Used for invariants that a caller's bad input can break.
#define FINCH_CHECK(cond, ...)                                                            \
  do {                                                                                    \
    if (!(cond)) [[unlikely]]                                                             \
      ::finch::detail::check_failed(__FILE__, __LINE__, #cond,                            \
                                    ::finch::detail::cat("" __VA_OPT__(, ) __VA_ARGS__)); \
  } while (0)

// FINCH_DCHECK: the same in debug builds, nothing in Release (micro-kernel preconditions).
#ifdef NDEBUG
#define FINCH_DCHECK(cond, ...) \
  do {                          \
  } while (0)
#else
#define FINCH_DCHECK(cond, ...) FINCH_CHECK(cond __VA_OPT__(, ) __VA_ARGS__)
#endif
