// im2col / col2im for one image: the patch matrix that turns a convolution into a GEMM.
// Shapes: image x [C, H, W]; col [C·KH·KW, OH·OW] (row (c, kh, kw), column (oh, ow)), zero where
// the window reads padding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

namespace finch::ops {

struct ConvGeometry {
  int64_t C, H, W;       // input image
  int64_t KH, KW;        // kernel
  int64_t sh, sw;        // stride
  int64_t ph, pw;        // zero padding
  int64_t dh, dw;        // dilation
  int64_t OH, OW;        // output
};

// col = im2col(x) for the output rows [oh0, oh1): col is [C·KH·KW, (oh1 − oh0)·OW]. Convs run
// over row tiles so the patch matrix of one tile stays in L2 while the GEMM reads it.
// T = float or double.
template <typename T>
void im2col(const T* x, const ConvGeometry& g, int64_t oh0, int64_t oh1, T* col);
// dx += col2im(col) for the output rows [oh0, oh1): every column entry is added back to the
// input pixel it was read from.
template <typename T>
void col2im(const T* col, const ConvGeometry& g, int64_t oh0, int64_t oh1, T* dx);

// Uninitialized scratch of at least n elements, one buffer per (thread, T, Slot), reused across
// calls: the conv kernels' patch and transform buffers (hundreds of KB) were allocated and
// zero-filled on every call, ~4% of a ResNet-20 training step. Valid until the same thread asks
// for the same slot again; conv kernels never nest, and each slot has one user at a time.
template <typename T, int Slot>
T* conv_scratch(size_t n) {
  thread_local std::unique_ptr<T[]> buf;
  thread_local size_t cap = 0;
  if (cap < n) {
    buf.reset(new T[n]);
    cap = n;
  }
  return buf.get();
}

}  // namespace finch::ops
