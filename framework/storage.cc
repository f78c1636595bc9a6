// Aligned allocation and release of tensor storage.
#include "framework/storage.h"

#include <malloc.h>

#include <cstdlib>
#include <new>

#include "framework/error.h"

namespace finch {

namespace {
// glibc serves blocks above 128 KiB with mmap and unmaps them on free, so every training step
// page-faults its activations in afresh (10-15 % of an LSTM step in profiles). Keeping big
// blocks in the heap makes step-to-step reuse free, as PyTorch's caching allocator does.
const bool g_malloc_tuned = [] {
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  return true;
}();
}  // namespace

Storage::Storage(size_t nbytes) : nbytes_(nbytes) {
  // aligned_alloc needs a size that is a multiple of the alignment; never allocate 0 bytes.
  const size_t padded = (nbytes + kAlignment - 1) / kAlignment * kAlignment + kAlignment;
  data_ = padded > nbytes ? std::aligned_alloc(kAlignment, padded) : nullptr;
  // A tensor too big for memory is a user's problem (a shape from a file or an option), so it
  // is reported as one sentence with the size, not as a bare std::bad_alloc.
  if (!data_)
    fail("cannot allocate a tensor of ", nbytes, " bytes (", nbytes >> 20, " MiB): not enough memory");
  release_ = [](void* p) { std::free(p); };
}

Storage::Storage(void* data, size_t nbytes, std::function<void(void*)> release)
    : data_(data), nbytes_(nbytes), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) release_(data_);
}

}  // namespace finch
