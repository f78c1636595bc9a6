// Storage: a refcounted, 64-byte-aligned byte buffer that tensors (and their views) share.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

namespace finch {

class Storage {
 public:
  // Allocates nbytes (uninitialized, like torch.empty) aligned to 64 bytes so SIMD loads never
  // straddle cache lines.
  explicit Storage(size_t nbytes);
  // Wraps memory owned elsewhere (an mmapped file); `release` runs when the last user goes.
  Storage(void* data, size_t nbytes, std::function<void(void*)> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  std::function<void(void*)> release_;
};

inline constexpr size_t kAlignment = 64;

}  // namespace finch
