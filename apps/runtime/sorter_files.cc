// The sorter's never-lose, never-duplicate file moves and their recovery (protocol in the header).
#include "apps/runtime/sorter_files.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "framework/error.h"

namespace finch::apps {

namespace fs = std::filesystem;

namespace {

std::string errno_text() { return std::strerror(errno); }

void fsync_path(const std::string& path, bool dir) {
  const int fd = ::open(path.c_str(), (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, ": cannot open to fsync (", errno_text(), ")");
  // EINVAL: a file system without fsync on folders; nothing more can be done there.
  if (::fsync(fd) != 0 && errno != EINVAL) {
    const std::string why = errno_text();
    ::close(fd);
    fail(path, ": fsync failed (", why, ")");
  }
  ::close(fd);
}

std::string parent_of(const std::string& path) {
  const fs::path p = fs::path(path).parent_path();
  return p.empty() ? "." : p.string();
}

// Writes `bytes` to `path` through a temporary, fsyncing file and folder (the intent record).
void write_durably(const std::string& path, const std::string& bytes) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fail(tmp, ": cannot create (", errno_text(), ")");
  const bool ok = ::write(fd, bytes.data(), bytes.size()) == ssize_t(bytes.size()) && ::fsync(fd) == 0;
  const std::string why = errno_text();
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) fail(path, ": cannot write the sorter's intent record (", why, ")");
  fsync_path(parent_of(path), true);
}

// src → dst (a fresh file) byte for byte, fsynced. Throws with the file named on any failure.
void copy_file_synced(const std::string& src, const std::string& dst) {
  const int in = ::open(src.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) fail(src, ": cannot open to copy (", errno_text(), ")");
  const int out = ::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    const std::string why = errno_text();
    ::close(in);
    fail(dst, ": cannot create (", why, ")");
  }
  std::string failure;
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(in, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      failure = src + ": read failed (" + errno_text() + ")";
      break;
    }
    if (n == 0) break;
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = ::write(out, buf + done, size_t(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        failure = dst + ": write failed (" + errno_text() + ")";
        break;
      }
      done += w;
    }
    if (!failure.empty()) break;
  }
  if (failure.empty() && ::fsync(out) != 0) failure = dst + ": fsync failed (" + errno_text() + ")";
  ::close(in);
  ::close(out);
  if (!failure.empty()) {
    ::unlink(dst.c_str());
    fail(failure);
  }
}

// BINS/<bin>/<stem><ext>, or <stem>-1<ext>, <stem>-2<ext>, … : the first name not yet taken.
std::string fresh_name(const std::string& dir, const std::string& file) {
  const fs::path f(file);
  const std::string stem = f.stem().string(), ext = f.extension().string();
  for (int k = 0;; ++k) {
    const std::string name = k == 0 ? file : stem + "-" + std::to_string(k) + ext;
    const fs::path p = fs::path(dir) / name;
    std::error_code ec;
    if (!fs::exists(fs::symlink_status(p, ec))) return p.string();
    if (k > 1000000) fail(dir, ": more than a million files named like ", file, "; expected a bin that is emptied now and then");
  }
}

bool exists_nofollow(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0;
}

}  // namespace

std::string absolute_path(const std::string& path) { return fs::absolute(path).lexically_normal().string(); }

SortedFiles::SortedFiles(const std::string& bins, bool copy, bool force_copy)
    : bins_(bins), state_((fs::path(bins) / ".sorter").string()), copy_(copy), force_copy_(force_copy) {
  std::error_code ec;
  fs::create_directories(state_, ec);
  if (ec) fail(bins, ": cannot create the bins folder (", ec.message(), ")");
  intent_ = (fs::path(state_) / "intent").string();
  const std::string lock = (fs::path(state_) / "lock").string();
  lock_fd_ = ::open(lock.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) fail(lock, ": cannot open the sorter's lock file (", errno_text(), ")");
  // flock is released by the kernel when the process dies, SIGKILL included.
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    ::close(lock_fd_);
    fail(bins, ": another sorter is using these bins (", lock, " is locked); expected one sorter per bins folder");
  }
  recover();
  std::ifstream ledger(fs::path(state_) / "copied");
  for (std::string line; std::getline(ledger, line);)
    if (!line.empty()) copied_.insert(line);
}

SortedFiles::~SortedFiles() {
  if (lock_fd_ >= 0) ::close(lock_fd_);
}

bool SortedFiles::already_copied(const std::string& src) const { return copied_.count(absolute_path(src)) != 0; }

void SortedFiles::record_copied(const std::string& abs_src) {
  const std::string path = (fs::path(state_) / "copied").string();
  // A path with a newline cannot be one ledger line; such a file is copied at most once per run.
  if (abs_src.find('\n') == std::string::npos) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) fail(path, ": cannot open the copy ledger (", errno_text(), ")");
    const std::string line = abs_src + "\n";
    const bool ok = ::write(fd, line.data(), line.size()) == ssize_t(line.size()) && ::fsync(fd) == 0;
    const std::string why = errno_text();
    ::close(fd);
    if (!ok) fail(path, ": cannot append to the copy ledger (", why, ")");
  }
  copied_.insert(abs_src);
}

void SortedFiles::recover() {
  ::unlink((intent_ + ".tmp").c_str());  // an intent never completed: nothing was touched
  if (!exists_nofollow(intent_)) return;
  std::ifstream f(intent_);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("src") || !j.contains("dst") || !j.contains("tmp") ||
      !j.contains("how") || !j.contains("keep") || !j["src"].is_string() || !j["dst"].is_string() ||
      !j["tmp"].is_string() || !j["how"].is_string() || !j["keep"].is_boolean())
    fail(intent_, ": expected the sorter's intent record {src, dst, tmp, how, keep}, found '", text.substr(0, 200),
         "'; move the files it names by hand, then delete it");
  const std::string src = j["src"], dst = j["dst"], tmp = j["tmp"], how = j["how"];
  const bool keep = j["keep"];
  if (how != "rename" && how != "copy") fail(intent_, ": expected how 'rename' or 'copy', found '", how, "'");
  if (how == "copy") {
    if (exists_nofollow(dst)) {
      if (keep) {
        record_copied(src);
        recovered_ = "an interrupted copy of " + src + " to " + dst + " was complete; recorded it as copied";
      } else if (exists_nofollow(src)) {
        if (::unlink(src.c_str()) != 0) fail(src, ": cannot remove the moved original (", errno_text(), ")");
        fsync_path(parent_of(src), true);
        recovered_ = "an interrupted move of " + src + " to " + dst + " was complete; removed the original";
      } else {
        recovered_ = "an interrupted move of " + src + " to " + dst + " had finished";
      }
    } else {
      ::unlink(tmp.c_str());
      recovered_ = "an interrupted copy of " + src + " had not reached " + dst + "; the original stays and the partial "
                   "copy was deleted";
    }
  } else {
    recovered_ = exists_nofollow(dst) ? "an interrupted rename of " + src + " to " + dst + " had happened"
                                      : "an interrupted rename of " + src + " had not happened; the file stays";
  }
  if (::unlink(intent_.c_str()) != 0) fail(intent_, ": cannot remove the intent record (", errno_text(), ")");
  fsync_path(state_, true);
}

std::string SortedFiles::place(const std::string& src_in, const std::string& bin) {
  const std::string src = absolute_path(src_in);
  const std::string dir = (fs::path(bins_) / bin).string();
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(dir, ": cannot create the bin folder (", ec.message(), ")");
  struct stat ss, ds;
  if (::stat(src.c_str(), &ss) != 0) fail(src, ": cannot read the file to sort (", errno_text(), ")");
  if (!S_ISREG(ss.st_mode)) fail(src, ": expected a regular file");
  if (::stat(dir.c_str(), &ds) != 0) fail(dir, ": cannot read the bin folder (", errno_text(), ")");
  const std::string dst = fresh_name(dir, fs::path(src).filename().string());
  const std::string tmp = (fs::path(dir) / ("." + fs::path(dst).filename().string() + ".sorter-part")).string();
  bool by_rename = !copy_ && !force_copy_ && ss.st_dev == ds.st_dev;
  const auto intent = [&](bool rename) {
    write_durably(intent_, nlohmann::json{{"src", src}, {"dst", dst}, {"tmp", tmp}, {"how", rename ? "rename" : "copy"},
                                          {"keep", copy_}}
                               .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  };
  if (by_rename) {
    intent(true);
    if (::rename(src.c_str(), dst.c_str()) == 0) {
      fsync_path(dir, true);
      fsync_path(parent_of(src), true);
    } else if (errno == EXDEV) {
      by_rename = false;  // one device number, two mounts (bind mounts): copy instead
    } else {
      const std::string why = errno_text();
      ::unlink(intent_.c_str());
      fail(src, ": cannot move to ", dst, " (", why, ")");
    }
  }
  if (!by_rename) {
    intent(false);
    try {
      copy_file_synced(src, tmp);
    } catch (...) {
      ::unlink(intent_.c_str());
      throw;
    }
    if (::rename(tmp.c_str(), dst.c_str()) != 0) {
      const std::string why = errno_text();
      ::unlink(tmp.c_str());
      ::unlink(intent_.c_str());
      fail(tmp, ": cannot rename to ", dst, " (", why, ")");
    }
    fsync_path(dir, true);
    if (copy_) {
      record_copied(src);
    } else {
      if (::unlink(src.c_str()) != 0) {
        // Undo the copy so the file stays in exactly one place: its original one.
        const std::string why = errno_text();
        ::unlink(dst.c_str());
        fsync_path(dir, true);
        ::unlink(intent_.c_str());
        fail(src, ": cannot remove the original after copying it (", why, "); the copy was undone");
      }
      fsync_path(parent_of(src), true);
    }
  }
  if (::unlink(intent_.c_str()) != 0) fail(intent_, ": cannot remove the intent record (", errno_text(), ")");
  fsync_path(state_, true);
  return dst;
}

}  // namespace finch::apps
