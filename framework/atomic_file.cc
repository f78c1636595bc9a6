// Atomic file output (temporary file + fsync + rename) over POSIX file descriptors.
#include "framework/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <streambuf>
#include <vector>

#include "framework/error.h"

namespace finch {
namespace {

// A buffered streambuf writing to a file descriptor. We need the descriptor itself (not an
// std::ofstream) to fsync the very file we wrote before renaming it. Errors are remembered in
// `error` (errno) instead of thrown, because iostreams swallow exceptions from streambufs; the
// caller checks it after the callback returns.
class FdBuf : public std::streambuf {
 public:
  explicit FdBuf(int fd) : fd_(fd), buf_(1 << 16) { setp(buf_.data(), buf_.data() + buf_.size()); }
  int error = 0;

  // Writes out everything buffered; false on failure.
  bool flush_all() {
    if (!write_all(pbase(), size_t(pptr() - pbase()))) return false;
    setp(buf_.data(), buf_.data() + buf_.size());
    return true;
  }

 protected:
  int_type overflow(int_type ch) override {
    if (!flush_all()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }
  std::streamsize xsputn(const char* s, std::streamsize n) override {
    // Large blocks (tensor data) bypass the buffer: no point copying megabytes twice.
    if (n >= std::streamsize(buf_.size())) {
      if (!flush_all() || !write_all(s, size_t(n))) return 0;
      return n;
    }
    return std::streambuf::xsputn(s, n);
  }
  int sync() override { return flush_all() ? 0 : -1; }

 private:
  bool write_all(const char* p, size_t n) {
    if (error) return false;
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error = errno;
        return false;
      }
      p += w;
      n -= size_t(w);
    }
    return true;
  }
  int fd_;
  std::vector<char> buf_;
};

std::string errno_str(int e) { return std::strerror(e); }

// Directory part of `path` for the existence check and the directory fsync ("." when none).
std::filesystem::path parent_dir(const std::string& path) {
  std::filesystem::path dir = std::filesystem::path(path).parent_path();
  return dir.empty() ? std::filesystem::path(".") : dir;
}

// Opens a new temporary file beside `path`. O_EXCL plus a per-process counter avoids clashing
// with another writer (another thread, or another process writing the same target).
int open_temp(const std::string& path, std::string& tmp_name) {
  static std::atomic<uint64_t> counter{0};
  for (int attempt = 0; attempt < 100; ++attempt) {
    tmp_name = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
    // 0666 so the umask decides the final permissions, as for any newly created file.
    const int fd = ::open(tmp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd >= 0) return fd;
    if (errno != EEXIST && errno != EINTR)
      fail("cannot write '", path, "': creating the temporary file '", tmp_name,
           "' failed: ", errno_str(errno));
  }
  fail("cannot write '", path, "': could not find an unused temporary file name beside it");
}

}  // namespace

void write_file_atomically(const std::string& path, const std::function<void(std::ostream&)>& write) {
  if (path.empty()) fail("cannot write a file: expected a file path, got an empty string");
  const std::filesystem::path dir = parent_dir(path);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    fail("cannot write '", path, "': the directory '", dir.string(), "' does not exist");
  if (std::filesystem::is_directory(path, ec))
    fail("cannot write '", path, "': expected a file path, but it is a directory");

  std::string tmp;
  const int fd = open_temp(path, tmp);
  // From here on every failure must remove the temporary before reporting.
  auto abandon = [&]() {
    ::close(fd);
    ::unlink(tmp.c_str());
  };
  FdBuf buf(fd);
  std::ostream os(&buf);
  try {
    write(os);
  } catch (...) {
    abandon();
    throw;
  }
  os.flush();
  if (!buf.flush_all() || buf.error || !os) {
    const int e = buf.error;
    abandon();
    fail("cannot write '", path, "': writing the data failed: ",
         e ? errno_str(e) : std::string("stream error"));
  }
  // fsync before rename: otherwise after a crash the new name can point at an empty file
  // (the rename reached the disk, the data did not) — the classic ext4 zero-length-file problem.
  if (::fsync(fd) != 0) {
    const int e = errno;
    abandon();
    fail("cannot write '", path, "': fsync failed: ", errno_str(e));
  }
  if (::close(fd) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot write '", path, "': closing the file failed: ", errno_str(e));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    ::unlink(tmp.c_str());
    fail("cannot write '", path, "': renaming the temporary file '", tmp, "' over it failed: ",
         errno_str(e));
  }
  // Persist the directory entry too. Failure here is not reported: the file is complete and in
  // place; only its durability across a power cut is weaker (some file systems refuse it).
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

void write_file_atomically(const std::string& path, std::string_view bytes) {
  write_file_atomically(path, [&](std::ostream& os) { os.write(bytes.data(), std::streamsize(bytes.size())); });
}

}  // namespace finch
