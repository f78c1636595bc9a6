// The last-resort error tier of every command-line main (train_cifar, finch, finch_run): any
// exception becomes one line on stderr and an exit code, never a library's internal text.
//
// Bad input is meant to be caught at its source, where the file or option can be named, as a
// finch::Error sentence (exit 1). What still arrives here untranslated is reported by kind:
// running out of memory and operating-system failures (a full disk, a missing permission) are
// the user's environment (exit 1); anything else — a nlohmann::json type error, an
// std::out_of_range from .at(), a logic error — is a bug in finch (exit 2), named as such
// instead of printing "[json.exception.type_error.302] ..." or "vector::_M_range_check".
// Header-only so that finch_run, linked to the runtime alone, shares it.
#pragma once

#include <cstdio>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "framework/error.h"

namespace finch::apps {

// A word for the kind of an internal exception (its what() text is for developers, not users).
inline const char* kind_of(const std::exception& e) {
  if (dynamic_cast<const nlohmann::json::exception*>(&e)) return "JSON type or key error";
  if (dynamic_cast<const std::out_of_range*>(&e)) return "index out of range";
  if (dynamic_cast<const std::invalid_argument*>(&e)) return "invalid argument";
  if (dynamic_cast<const std::logic_error*>(&e)) return "logic error";
  if (dynamic_cast<const std::runtime_error*>(&e)) return "runtime error";
  return "exception";
}

inline int out_of_memory(const char* program) {
  std::fprintf(stderr,
               "%s: out of memory: an allocation failed (the input or the options ask for more memory than "
               "this machine has; try a smaller --batch-size or input)\n",
               program);
  return 1;
}

// Runs `body` (returning the exit code) and reports whatever it throws as described above.
template <typename Body>
int run_with_user_errors(const char* program, Body&& body) {
  try {
    return body();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", program, e.what());
    return 1;
  } catch (const std::bad_alloc&) {  // std::length_error below: a size too big for a vector
    return out_of_memory(program);
  } catch (const std::length_error&) {
    return out_of_memory(program);
  } catch (const std::filesystem::filesystem_error& e) {
    const std::string path = e.path1().string();
    std::fprintf(stderr, "%s: %s%s%s\n", program, path.empty() ? "" : path.c_str(), path.empty() ? "" : ": ",
                 e.code().message().c_str());
    return 1;
  } catch (const std::system_error& e) {
    std::fprintf(stderr, "%s: a system call failed: %s\n", program, e.code().message().c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "%s: internal error: an unexpected %s escaped the input checks; please report it with the "
                 "command line\n",
                 program, kind_of(e));
    return 2;
  } catch (...) {
    std::fprintf(stderr, "%s: internal error: an unknown exception; please report it with the command line\n",
                 program);
    return 2;
  }
}

}  // namespace finch::apps
