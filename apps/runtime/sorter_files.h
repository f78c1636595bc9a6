// The sorter's file moves: a file is never lost and never duplicated, even when the sorter is
// killed (SIGKILL, power cut) at any instruction.
//
// Protocol (all state lives in BINS/.sorter/, which one sorter at a time owns through flock on
// BINS/.sorter/lock):
//  1. The destination BINS/<bin>/<name> is a name that does not exist yet (name, name-1, name-2,
//     … before the extension), so nothing is ever overwritten.
//  2. An intent record {src, dst, tmp, how, keep} is written to BINS/.sorter/intent (temporary +
//     fsync + rename + fsync of the folder) before the file is touched.
//  3a. rename (source and bin on one file system, no --copy): rename(src, dst), then fsync both
//      folders. rename(2) is atomic: the file is at src or at dst, never both or neither.
//  3b. copy (another file system, or --copy): copy src → tmp (BINS/<bin>/.<name>.sorter-part),
//      fsync tmp, rename(tmp, dst), fsync the bin folder; then, unless keep (--copy), unlink src
//      and fsync its folder. With --copy the source's absolute path is appended (and fsynced) to
//      BINS/.sorter/copied, the ledger that keeps a restarted sorter from copying it twice.
//  4. The intent is removed (unlink + fsync of BINS/.sorter).
// Recovery at start (a leftover intent means the last move was interrupted): if dst exists the
// copy was complete (dst only appears by renaming a fully written, fsynced tmp), so the move is
// finished: unlink src (move) or record it in the ledger (--copy). If dst does not exist, the
// partial tmp is deleted and src, never touched before dst existed, stays where it was and is
// sorted again when its source lists it. A rename intent needs nothing: rename was atomic.
#pragma once

#include <set>
#include <string>

namespace finch::apps {

class SortedFiles {
 public:
  // Creates BINS and BINS/.sorter, takes the lock (another running sorter on the same bins is an
  // error), resolves a leftover intent and loads the --copy ledger. `copy` keeps the originals;
  // `force_copy` uses the copy protocol even on one file system (file systems whose rename is
  // not to be trusted, and the tests of the copy path).
  SortedFiles(const std::string& bins, bool copy, bool force_copy);
  ~SortedFiles();
  SortedFiles(const SortedFiles&) = delete;
  SortedFiles& operator=(const SortedFiles&) = delete;

  // What recovery did at start: "" (nothing to do) or one sentence for the log.
  const std::string& recovered() const { return recovered_; }
  // With --copy: whether `src` was already copied into a bin by this or an earlier run.
  bool already_copied(const std::string& src) const;
  // Moves (or copies) `src` into BINS/<bin>/ by the protocol above; returns the destination path.
  // Errors (unreadable source, full disk) are finch::Error sentences naming the file; the source
  // is then still where it was.
  std::string place(const std::string& src, const std::string& bin);

 private:
  std::string bins_, state_, intent_;
  bool copy_, force_copy_;
  int lock_fd_ = -1;
  std::set<std::string> copied_;
  std::string recovered_;

  void recover();
  void record_copied(const std::string& abs_src);
};

// The absolute, lexically normal form of a path (what the ledger records).
std::string absolute_path(const std::string& path);

}  // namespace finch::apps
