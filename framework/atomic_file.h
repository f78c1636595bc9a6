// Atomic file output: write to a temporary file beside the target, fsync, rename over it.
//
// Every output finch writes (checkpoints, compiled programs, JSON/CSV results) goes through here,
// so a crash, a full disk or Ctrl-C midway never leaves a half-written file under the real name:
// readers see either the old file or the complete new one. rename(2) is atomic only within one
// file system, which is why the temporary lives in the target's own directory.
#pragma once

#include <functional>
#include <iosfwd>
#include <string>
#include <string_view>

namespace finch {

// Calls write(os) with a stream into a fresh temporary file "<path>.tmp.<pid>.<n>" in the same
// directory, then flushes, fsyncs and renames it to `path` (replacing any existing file) and
// fsyncs the directory so the rename itself survives a power cut. If `write` throws, or any
// write/fsync/rename fails, the temporary is removed, `path` is left untouched and a finch::Error
// naming the file is thrown (the callback's own exception is rethrown as is).
// Throws finch::Error when the directory of `path` does not exist.
void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write);

// Convenience form for bytes already in memory.
void write_file_atomically(const std::string& path, std::string_view bytes);

}  // namespace finch
