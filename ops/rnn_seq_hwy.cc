// The fp32 recurrent product of the LSTM and GRU sequence kernels (ops/rnn_seq.h):
// C[n, G] += h[n, K] · W_hhᵀ with W_hh [G, K] packed once per sequence as Wt [K, Gp] (Gp = G
// rounded up to the vector width, zero-filled), so every step vectorizes along the gate axis
// G = 4H / 3H and never along the hidden axis K = H.
//
// Why not sgemm: a step is a GEMV-like product (n = the chunk's active rows, often 1), and
// OpenBLAS picks its small-matrix kernel only for K >= 32 (on this Zen 4 build), so below that
// every step paid a full pack of W_hh: the batch-1 LSTM program was 1.5x slower at H 24 than
// at H 32. This kernel costs the same per multiply-add at every H.
//
// Each output is summed k = 0..K-1 in order onto C's value, one fused multiply-add per k, so a
// row's result does not depend on n, the row blocking or the gate blocking (a sample gives the
// same bits alone and inside a padded batch); recurrent_gemm_reference is that loop in scalar.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "framework/error.h"
#include "ops/rnn_seq.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/rnn_seq_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::ops::rnn_detail::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

constexpr int kPanel = 4;  // vectors of gates per panel of the packed weight (see pack_recurrent)


int64_t Lanes32() { return int64_t(hn::Lanes(hn::ScalableTag<float>())); }
int64_t PanelWidth() { return kPanel * Lanes32(); }

// R rows × V vectors of C at (a, c), over all K. C rows have stride ldc and at least V·N
// readable/writable floats from c (the caller pads the tail).
template <int R, int V>
HWY_INLINE void Block(int64_t K, const float* a, int64_t lda, const float* wt, int64_t ldw,
                      float* c, int64_t ldc) {
  const hn::ScalableTag<float> d;
  const size_t N = hn::Lanes(d);
  using Vec = hn::Vec<decltype(d)>;
  Vec acc[R][V];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = hn::LoadU(d, c + r * ldc + v * N);
  for (int64_t k = 0; k < K; ++k) {
    Vec w[V];
    for (int v = 0; v < V; ++v) w[v] = hn::LoadU(d, wt + k * ldw + v * N);
    for (int r = 0; r < R; ++r) {
      const Vec x = hn::Set(d, a[r * lda + k]);
      for (int v = 0; v < V; ++v) acc[r][v] = hn::MulAdd(x, w[v], acc[r][v]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) hn::StoreU(acc[r][v], d, c + r * ldc + v * N);
}

// Wt is stored in panels of up to kPanel vectors of gates: panel q holds gates
// [q·kPanel·N, …) as a contiguous [K, width] block, so a block streams through memory in order
// (no 4 KiB-strided rows that defeat the prefetcher and alias in L1).
template <int R>
HWY_INLINE void RowBlock(int64_t K, int64_t Gp, const float* a, int64_t lda, const float* wt,
                         float* c, int64_t ldc) {
  const int64_t N = Lanes32();
  int64_t j = 0;
  for (; j + kPanel * N <= Gp; j += kPanel * N)
    Block<R, kPanel>(K, a, lda, wt + j * K, kPanel * N, c + j, ldc);
  const int64_t w = Gp - j;
  switch (w / N) {
    case 3: Block<R, 3>(K, a, lda, wt + j * K, w, c + j, ldc); break;
    case 2: Block<R, 2>(K, a, lda, wt + j * K, w, c + j, ldc); break;
    case 1: Block<R, 1>(K, a, lda, wt + j * K, w, c + j, ldc); break;
    default: break;
  }
}

// c [n, ldc] with ldc >= Gp (a multiple of the lane count).
void RecurrentGemmPadded(int64_t n, int64_t Gp, int64_t K, const float* a, int64_t lda,
                         const float* wt, float* c, int64_t ldc) {
  int64_t r = 0;
  for (; r + 4 <= n; r += 4) RowBlock<4>(K, Gp, a + r * lda, lda, wt, c + r * ldc, ldc);
  switch (n - r) {
    case 3: RowBlock<3>(K, Gp, a + r * lda, lda, wt, c + r * ldc, ldc); break;
    case 2: RowBlock<2>(K, Gp, a + r * lda, lda, wt, c + r * ldc, ldc); break;
    case 1: RowBlock<1>(K, Gp, a + r * lda, lda, wt, c + r * ldc, ldc); break;
    default: break;
  }
}

}  // namespace finch::ops::rnn_detail::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops {
namespace rnn_detail {
HWY_EXPORT(Lanes32);
HWY_EXPORT(PanelWidth);
namespace {
int64_t lanes() { return FINCH_DISPATCH(Lanes32)(); }
int64_t panel_width() { return FINCH_DISPATCH(PanelWidth)(); }
}  // namespace
}  // namespace rnn_detail

PackedRecurrent pack_recurrent(const Tensor& w_hh) {
  if (w_hh.dtype() != DType::f32 || w_hh.dim() != 2)
    fail("pack_recurrent: expected an F32 [G, K] weight, found ", dtype_name(w_hh.dtype()), " ",
         shape_str(w_hh.shape()));
  const Tensor w = w_hh.contiguous();
  PackedRecurrent p;
  p.G = w.size(0);
  p.K = w.size(1);
  const int64_t N = rnn_detail::lanes();
  p.Gp = (p.G + N - 1) / N * N;
  p.wt.assign(size_t(p.K * p.Gp), 0.0f);
  const float* src = w.data<float>();
  // Panels of kPanel·N gates (the last one narrower), each a contiguous [K, width] block.
  const int64_t pw = rnn_detail::panel_width();
  for (int64_t j0 = 0; j0 < p.Gp; j0 += pw) {
    const int64_t width = std::min(pw, p.Gp - j0), j1 = std::min(j0 + width, p.G);
    float* panel = p.wt.data() + j0 * p.K;
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t j = j0; j < j1; ++j) panel[k * width + (j - j0)] = src[j * p.K + k];
  }
  return p;
}

namespace rnn_detail {
HWY_EXPORT(RecurrentGemmPadded);

void recurrent_gemm(const PackedRecurrent& p, int64_t n, const float* a, int64_t lda, float* c,
                    int64_t ldc) {
  if (n <= 0 || p.G == 0) return;
  if (p.Gp == p.G) {
    FINCH_DISPATCH(RecurrentGemmPadded)(n, p.Gp, p.K, a, lda, p.wt.data(), c, ldc);
    return;
  }
  // G is not a multiple of the vector width: run on a padded copy of the rows (the padding
  // lanes multiply zero weights and are dropped), so every element gets the same arithmetic.
  std::vector<float> buf(size_t(n * p.Gp), 0.0f);
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(buf.data() + r * p.Gp, c + r * ldc, size_t(p.G) * sizeof(float));
  FINCH_DISPATCH(RecurrentGemmPadded)(n, p.Gp, p.K, a, lda, p.wt.data(), buf.data(), p.Gp);
  for (int64_t r = 0; r < n; ++r)
    std::memcpy(c + r * ldc, buf.data() + r * p.Gp, size_t(p.G) * sizeof(float));
}

void recurrent_gemm_reference(int64_t n, int64_t G, int64_t K, const float* a, int64_t lda,
                              const float* w_hh, float* c, int64_t ldc) {
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < G; ++j) {
      float acc = c[r * ldc + j];
      for (int64_t k = 0; k < K; ++k) acc = std::fma(a[r * lda + k], w_hh[j * K + k], acc);
      c[r * ldc + j] = acc;
    }
}

}  // namespace rnn_detail
}  // namespace finch::ops
#endif  // HWY_ONCE
