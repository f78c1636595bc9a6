// Highway micro-kernels of the fp32 GEMM (kernels/f32_gemm.h): the 8×NR tile with its fused
// epilogue, the batch-1 GEMV over packed panels, and the run-by-run im2col tile copy.
//
// Why weights broadcast and pixels along the lanes: a conv's output plane is contiguous per
// channel in NCHW, so a tile's row of NR pixels is stored with full-width stores, and B's rows
// (input planes or im2col rows) are loaded contiguously. The broadcast of a packed weight is one
// load folded into the fma on AVX-512 (vfmadd231ps with {1to16}).
#include <algorithm>
#include <cstring>

#include "kernels/f32_gemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/f32_gemm_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "hwy/cache_control.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::f32k::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;
using DI = hn::RebindToSigned<D>;

// Vectors of pixels per tile: 8 × kNV accumulators must leave registers for B and a broadcast.
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3) || HWY_ARCH_ARM
constexpr int kNV = 2;  // 32 vector registers: 16 accumulators
#else
constexpr int kNV = 1;  // 16 registers (AVX2, SSE4) or emulated: 8 accumulators
#endif

int64_t TileCols() { return kNV * int64_t(hn::Lanes(D())); }
int64_t VectorCols() { return int64_t(hn::Lanes(D())); }

// Where row k of B starts: rows ldb apart (Strided), or at b + offs[k] (Indirect: the indirect
// GEMM of a conv, each row an input plane's run at a tap's offset, so no im2col copy is made).
// at(j): the same rows from column j.
struct Strided {
  const float* b;
  int64_t ldb;
  HWY_INLINE const float* operator()(int64_t k) const { return b + k * ldb; }
  Strided at(int64_t j) const { return {b + j, ldb}; }
};
struct Indirect {
  const float* b;
  const int64_t* offs;
  HWY_INLINE const float* operator()(int64_t k) const { return b + offs[k]; }
  Indirect at(int64_t j) const { return {b + j, offs}; }
};

// How far ahead (floats) the weight stream is prefetched: 2 KiB, 64 k steps of a panel (the
// next panel's start near a panel's end; past the last, a prefetch of nothing, which cannot
// fault). A 1×1 conv on a 4×4 or 7×7 plane does only 16–49 fma per weight, so its weights
// (MobileNetV2's last layers: 0.6–1.6 MB each, 8.9 MB in all, evicted from the L2 between runs)
// stream from the L3 at the rate the hardware prefetcher's one sequential stream sustains; asked
// for 64 steps early, the whole MobileNetV2 program took 13 % less CPU time (A/B, docs/fp32-kernels.md).
constexpr int64_t kPrefetchW = 512;

// acc[r][v] = Σ_k wp[k][r] · B[k][v·L ..], k in order.
template <int NV, class Rows>
HWY_INLINE void Accumulate(const float* HWY_RESTRICT wp, int64_t K, Rows rows, V (&acc)[kMR][NV]) {
  const D d;
  const size_t L = hn::Lanes(d);
  for (int r = 0; r < kMR; ++r)
    for (int v = 0; v < NV; ++v) acc[r][v] = hn::Zero(d);
  for (int64_t k = 0; k < K; ++k) {
    const float* HWY_RESTRICT bk = rows(k);
    V bv[NV];
    for (int v = 0; v < NV; ++v) bv[v] = hn::LoadU(d, bk + size_t(v) * L);
    const float* wk = wp + k * kMR;
    hwy::Prefetch(wk + kPrefetchW);
#if HWY_COMPILER_GCC_ACTUAL
#pragma GCC unroll 8
#endif
    for (int r = 0; r < kMR; ++r) {
      const V w = hn::Set(d, wk[r]);
      for (int v = 0; v < NV; ++v) acc[r][v] = hn::MulAdd(w, bv[v], acc[r][v]);
    }
  }
}

HWY_INLINE V Clamp(V v, Act act) {
  const D d;
  if (act == Act::none) return v;  // no Max/Min: a NaN stays a NaN
  v = hn::Max(v, hn::Zero(d));
  return act == Act::relu6 ? hn::Min(v, hn::Set(d, 6.0f)) : v;
}

float ClampScalar(float v, Act act) {
  if (act == Act::none) return v;
  v = std::max(v, 0.0f);
  return act == Act::relu6 ? std::min(v, 6.0f) : v;
}

// Rows [0, M) × columns [0, n), n <= NV·L, NV vectors of pixels per tile.
template <int NV, class Rows>
void Panels(const float* HWY_RESTRICT wp, int64_t M, int64_t K, Rows b, int64_t n, const float* HWY_RESTRICT bias,
            const float* HWY_RESTRICT res, int64_t ldr, float* HWY_RESTRICT y, int64_t ldy, Act act) {
  const D d;
  const size_t L = hn::Lanes(d);
  for (int64_t m0 = 0; m0 < M; m0 += kMR) {
    V acc[kMR][NV];
    Accumulate<NV>(wp + m0 * K, K, b, acc);
    const int64_t mr = std::min<int64_t>(kMR, M - m0);
    // Loops over r run the constant kMR times (unrolled, so acc stays in registers: a runtime
    // bound would make acc an array in memory) and skip the rows past mr.
    if (n == NV * int64_t(L)) {
#if HWY_COMPILER_GCC_ACTUAL
#pragma GCC unroll 8
#endif
      for (int r = 0; r < kMR; ++r) {
        if (r >= mr) break;
        const V bv = hn::Set(d, bias ? bias[m0 + r] : 0.0f);
        float* yr = y + (m0 + r) * ldy;
        const float* rr = res ? res + (m0 + r) * ldr : nullptr;
        for (int v = 0; v < NV; ++v) {
          V s = hn::Add(acc[r][v], bv);
          if (rr) s = hn::Add(s, hn::LoadU(d, rr + size_t(v) * L));
          hn::StoreU(Clamp(s, act), d, yr + size_t(v) * L);
        }
      }
    } else {  // a partial tile: through a stack row (no store may touch columns past n)
      HWY_ALIGN float tmp[NV * HWY_MAX_BYTES / sizeof(float)] = {};
#if HWY_COMPILER_GCC_ACTUAL
#pragma GCC unroll 8
#endif
      for (int r = 0; r < kMR; ++r) {
        if (r >= mr) break;
        for (int v = 0; v < NV; ++v) hn::Store(acc[r][v], d, tmp + size_t(v) * L);
        float* yr = y + (m0 + r) * ldy;
        const float* rr = res ? res + (m0 + r) * ldr : nullptr;
        for (int64_t j = 0; j < n; ++j) {
          float s = tmp[j] + (bias ? bias[m0 + r] : 0.0f);
          if (rr) s += rr[j];
          yr[j] = ClampScalar(s, act);
        }
      }
    }
  }
}

// One column of B against all panels, the 8 rows of a panel along the lanes: a
// partial tile's last few pixels, which a vector of pixels would mostly compute as padding (a
// 7×7 plane is 49 = 32 + 16 + 1 pixels on AVX-512). Each output is the one fma chain
// k = 0, 1, …, K−1 from zero that a lane of a vector tile runs (Accumulate), so a pixel's result
// does not depend on where its tile ends: a linear's row is the same bits in a matrix of any row
// count from 4 (infer_squad's trimmed windows equal the padded ones). Four chains (panels, or
// parts of a panel on targets under 8 lanes) run side by side to hide the fma latency.
template <class Rows>
void Column(const float* HWY_RESTRICT wp, int64_t M, int64_t K, Rows b, const float* HWY_RESTRICT bias,
            const float* HWY_RESTRICT res, int64_t ldr, float* HWY_RESTRICT y, int64_t ldy, Act act) {
  const hn::CappedTag<float, kMR> d8;
  const int64_t L = int64_t(hn::Lanes(d8)), nv = kMR / L;
  using V8 = hn::Vec<decltype(d8)>;
  // Chain c: rows [c·L, c·L + L) = lanes v = c mod nv of panel c / nv.
  const int64_t chains = (M + kMR - 1) / kMR * nv;
  for (int64_t c0 = 0; c0 < chains; c0 += 4) {
    const int64_t nc = std::min<int64_t>(4, chains - c0);
    const float* w[4];
    for (int64_t i = 0; i < 4; ++i) {  // past the last chain: the last one again, dropped below
      const int64_t c = c0 + std::min(i, nc - 1);
      w[i] = wp + c / nv * kMR * K + c % nv * L;
    }
    V8 a0 = hn::Zero(d8), a1 = hn::Zero(d8), a2 = hn::Zero(d8), a3 = hn::Zero(d8);
    for (int64_t k = 0; k < K; ++k) {
      const V8 x = hn::Set(d8, *b(k));
      const int64_t o = k * kMR;
      a0 = hn::MulAdd(hn::LoadU(d8, w[0] + o), x, a0);
      a1 = hn::MulAdd(hn::LoadU(d8, w[1] + o), x, a1);
      a2 = hn::MulAdd(hn::LoadU(d8, w[2] + o), x, a2);
      a3 = hn::MulAdd(hn::LoadU(d8, w[3] + o), x, a3);
    }
    HWY_ALIGN float out[4 * kMR];
    hn::Store(a0, d8, out), hn::Store(a1, d8, out + L), hn::Store(a2, d8, out + 2 * L), hn::Store(a3, d8, out + 3 * L);
    for (int64_t i = 0; i < nc; ++i) {
      const int64_t c = c0 + i, m0 = c / nv * kMR + c % nv * L;
      for (int64_t l = 0; l < L && m0 + l < M; ++l) {
        const int64_t m = m0 + l;
        float s = out[i * L + l] + (bias ? bias[m] : 0.0f);
        if (res) s += res[m * ldr];
        y[m * ldy] = ClampScalar(s, act);
      }
    }
  }
}

// Columns a partial tile leaves past its whole vectors that go one by one through Column: up to
// this many (each is about one fma per k and panel, against eight for a vector of them).
constexpr int64_t kColumnTail = 4;

// A partial tile: whole vectors of pixels on the one-vector tile (a 4×4 plane on AVX-512 is
// one), a short rest column by column, a longer one as one more padded vector. Every output's
// order of summation depends only on its tile position, not on the thread count.
template <class Rows>
void Tile(const float* HWY_RESTRICT wp, int64_t M, int64_t K, Rows b, int64_t n, const float* HWY_RESTRICT bias,
          const float* HWY_RESTRICT res, int64_t ldr, float* HWY_RESTRICT y, int64_t ldy, Act act) {
  const int64_t L = int64_t(hn::Lanes(D()));
  if (n == kNV * L) return Panels<kNV>(wp, M, K, b, n, bias, res, ldr, y, ldy, act);
  const int64_t whole = n / L * L;
  for (int64_t j = 0; j < whole; j += L)
    Panels<1>(wp, M, K, b.at(j), L, bias, res ? res + j : nullptr, ldr, y + j, ldy, act);
  if (n - whole > kColumnTail) {
    Panels<1>(wp, M, K, b.at(whole), n - whole, bias, res ? res + whole : nullptr, ldr, y + whole, ldy, act);
    return;
  }
  for (int64_t j = whole; j < n; ++j) Column(wp, M, K, b.at(j), bias, res ? res + j : nullptr, ldr, y + j, ldy, act);
}

void Gemm8xNR(const float* HWY_RESTRICT wp, int64_t M, int64_t K, const float* HWY_RESTRICT b, int64_t ldb,
              int64_t n, const float* HWY_RESTRICT bias, const float* HWY_RESTRICT res, int64_t ldr,
              float* HWY_RESTRICT y, int64_t ldy, Act act) {
  Tile(wp, M, K, Strided{b, ldb}, n, bias, res, ldr, y, ldy, act);
}

// Whole tiles [0, n) (n a multiple of NR), panel by panel: each panel of 8 output rows runs
// over all n columns before the next (f32_gemm_8xNR_block in f32_gemm.h). Each output is the
// same fma chain as in Gemm8xNR, so the two give the same bits.
void Gemm8xNRBlock(const float* HWY_RESTRICT wp, int64_t M, int64_t K, const float* HWY_RESTRICT b, int64_t ldb,
                   int64_t n, const float* HWY_RESTRICT bias, const float* HWY_RESTRICT res, int64_t ldr,
                   float* HWY_RESTRICT y, int64_t ldy, Act act) {
  const int64_t NR = TileCols();
  for (int64_t m0 = 0; m0 < M; m0 += kMR) {
    const int64_t rows = std::min<int64_t>(kMR, M - m0);
    const float* wm = wp + m0 * K;
    const float* bm = bias ? bias + m0 : nullptr;
    const float* rm = res ? res + m0 * ldr : nullptr;
    float* ym = y + m0 * ldy;
    for (int64_t j = 0; j < n; j += NR)
      Panels<kNV>(wm, rows, K, Strided{b + j, ldb}, NR, bm, rm ? rm + j : nullptr, ldr, ym + j, ldy, act);
  }
}

void IGemm8xNR(const float* HWY_RESTRICT wp, int64_t M, int64_t K, const float* HWY_RESTRICT b,
               const int64_t* HWY_RESTRICT offs, int64_t n, const float* HWY_RESTRICT bias,
               const float* HWY_RESTRICT res, int64_t ldr, float* HWY_RESTRICT y, int64_t ldy, Act act) {
  Tile(wp, M, K, Indirect{b, offs}, n, bias, res, ldr, y, ldy, act);
}

// The 8 rows of a panel along the lanes of an (at most) 8-lane tag; four k-phases of
// accumulators hide the fma latency (a GEMV has no other independent sums).
void Gemv(const float* HWY_RESTRICT wp, int64_t M, int64_t K, const float* HWY_RESTRICT x,
          const float* HWY_RESTRICT bias, float* HWY_RESTRICT y, Act act, int64_t m0, int64_t m1) {
  const hn::CappedTag<float, kMR> d8;
  const int64_t L = int64_t(hn::Lanes(d8));
  const int64_t nv = kMR / L;  // 1 (AVX2, AVX-512), 2 (SSE4, NEON) or 8 (scalar)
  using V8 = hn::Vec<decltype(d8)>;
  for (int64_t p0 = m0; p0 < m1; p0 += kMR) {
    const float* w = wp + p0 * K;
    HWY_ALIGN float out[kMR];
    for (int64_t v = 0; v < nv; ++v) {
      V8 a0 = hn::Zero(d8), a1 = hn::Zero(d8), a2 = hn::Zero(d8), a3 = hn::Zero(d8);
      int64_t k = 0;
      for (; k + 4 <= K; k += 4) {
        a0 = hn::MulAdd(hn::LoadU(d8, w + (k + 0) * kMR + v * L), hn::Set(d8, x[k + 0]), a0);
        a1 = hn::MulAdd(hn::LoadU(d8, w + (k + 1) * kMR + v * L), hn::Set(d8, x[k + 1]), a1);
        a2 = hn::MulAdd(hn::LoadU(d8, w + (k + 2) * kMR + v * L), hn::Set(d8, x[k + 2]), a2);
        a3 = hn::MulAdd(hn::LoadU(d8, w + (k + 3) * kMR + v * L), hn::Set(d8, x[k + 3]), a3);
      }
      for (; k < K; ++k) a0 = hn::MulAdd(hn::LoadU(d8, w + k * kMR + v * L), hn::Set(d8, x[k]), a0);
      const V8 s = hn::Add(hn::Add(hn::Add(a0, a1), hn::Add(a2, a3)), hn::LoadU(d8, bias + p0 + v * L));
      hn::Store(s, d8, out + v * L);
    }
    const int64_t mr = std::min<int64_t>(kMR, M - p0);
    for (int64_t r = 0; r < mr; ++r) y[p0 + r] = ClampScalar(out[r], act);
  }
}

void Im2colTile(const float* HWY_RESTRICT xp, int64_t plane, int64_t C, const int64_t* HWY_RESTRICT taps, int64_t T,
                const Segment* HWY_RESTRICT segs, int64_t nseg, int64_t cols, float* HWY_RESTRICT dst) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d)), NR = kNV * L;
  // Every run of the tile moves as many vectors as its longest run needs: kNV, or one where the
  // output rows are at most a vector wide (ResNet-20's 14² and 7² strided convs: half the
  // stores, which were a quarter of the conv's time). The count is the same for every run and
  // tile of a conv: no branch on a run's length, which varies from run to run and would be
  // mispredicted.
  int64_t longest = 0;
  for (int64_t s = 0; s < nseg; ++s) longest = std::max<int64_t>(longest, segs[s].len);
  const bool one = longest <= L;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t t = 0; t < T; ++t) {
      const float* src = xp + c * plane + taps[t];
      float* out = dst + (c * T + t) * NR;
      if (one) {
        for (int64_t s = 0; s < nseg; ++s) hn::StoreU(hn::LoadU(d, src + segs[s].base), d, out + segs[s].j0);
      } else {
        for (int64_t s = 0; s < nseg; ++s) {
          const float* from = src + segs[s].base;
          float* to = out + segs[s].j0;
          for (int v = 0; v < kNV; ++v) hn::StoreU(hn::LoadU(d, from + v * L), d, to + v * L);
        }
      }
      if (cols < NR) std::fill(out + cols, out + NR, 0.0f);
    }
}

// Pairs [j, pairs) by vectors of tag dt, the last one overlapping the one before (a row of 28
// or 14 floats is shorter than one 16-lane pair of loads, and went pair by pair). Returns the
// pairs done: all of them, or j unchanged when fewer than one vector are left in all.
template <class DT>
HWY_INLINE int64_t SplitPairsBy(DT dt, const float* HWY_RESTRICT src, int64_t j, int64_t pairs,
                                float* HWY_RESTRICT even, float* HWY_RESTRICT odd) {
  const int64_t L = int64_t(hn::Lanes(dt));
  if (pairs < L) return j;
  for (;; j += L) {
    const int64_t k = std::min(j, pairs - L);
    hn::Vec<DT> e, o;
    hn::LoadInterleaved2(dt, src + 2 * k, e, o);
    hn::StoreU(e, dt, even + k);
    hn::StoreU(o, dt, odd + k);
    if (k + L >= pairs) return pairs;
  }
}

// Whole vectors of pairs, then the rest by 8- or 4-lane vectors. Nothing is read past src + n,
// nor written past the n / 2 odd and (n + 1) / 2 even outputs.
void SplitPairs(const float* HWY_RESTRICT src, int64_t n, float* HWY_RESTRICT even, float* HWY_RESTRICT odd) {
  const D d;
  const int64_t L = int64_t(hn::Lanes(d)), pairs = n / 2;
  int64_t j = 0;
  for (; j + L <= pairs; j += L) {
    V e, o;
    hn::LoadInterleaved2(d, src + 2 * j, e, o);
    hn::StoreU(e, d, even + j);
    hn::StoreU(o, d, odd + j);
  }
  if (j < pairs) j = SplitPairsBy(hn::CappedTag<float, 8>(), src, j, pairs, even, odd);
  if (j < pairs) j = SplitPairsBy(hn::CappedTag<float, 4>(), src, j, pairs, even, odd);
  for (; j < pairs; ++j) even[j] = src[2 * j], odd[j] = src[2 * j + 1];
  if (n % 2) even[pairs] = src[n - 1];
}

}  // namespace finch::quant::kernels::f32k::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels::f32k {

HWY_EXPORT(TileCols);
HWY_EXPORT(VectorCols);
HWY_EXPORT(Gemm8xNR);
HWY_EXPORT(Gemm8xNRBlock);
HWY_EXPORT(IGemm8xNR);
HWY_EXPORT(Gemv);
HWY_EXPORT(Im2colTile);
HWY_EXPORT(SplitPairs);

int64_t f32_gemm_tile_cols() { return FINCH_DISPATCH(TileCols)(); }
int64_t f32_gemm_vector_cols() { return FINCH_DISPATCH(VectorCols)(); }

void f32_gemm_8xNR(const float* wp, int64_t M, int64_t K, const float* b, int64_t ldb, int64_t n, const float* bias,
                   const float* res, int64_t ldr, float* y, int64_t ldy, Act act) {
  FINCH_DISPATCH(Gemm8xNR)(wp, M, K, b, ldb, n, bias, res, ldr, y, ldy, act);
}

void f32_gemm_8xNR_block(const float* wp, int64_t M, int64_t K, const float* b, int64_t ldb, int64_t n,
                         const float* bias, const float* res, int64_t ldr, float* y, int64_t ldy, Act act) {
  FINCH_DISPATCH(Gemm8xNRBlock)(wp, M, K, b, ldb, n, bias, res, ldr, y, ldy, act);
}

void f32_igemm_8xNR(const float* wp, int64_t M, int64_t K, const float* b, const int64_t* offs, int64_t n,
                    const float* bias, const float* res, int64_t ldr, float* y, int64_t ldy, Act act) {
  FINCH_DISPATCH(IGemm8xNR)(wp, M, K, b, offs, n, bias, res, ldr, y, ldy, act);
}

void f32_gemv(const float* wp, int64_t M, int64_t K, const float* x, const float* bias, float* y, Act act,
              int64_t m0, int64_t m1) {
  FINCH_DISPATCH(Gemv)(wp, M, K, x, bias, y, act, m0, m1);
}

void f32_im2col_tile(const float* xp, int64_t plane, int64_t C, const int64_t* taps, int64_t T, const Segment* segs,
                     int64_t nseg, int64_t cols, float* dst) {
  FINCH_DISPATCH(Im2colTile)(xp, plane, C, taps, T, segs, nseg, cols, dst);
}

void f32_split_pairs(const float* src, int64_t n, float* even, float* odd) {
  FINCH_DISPATCH(SplitPairs)(src, n, even, odd);
}

void f32_pack_panels(const float* w, int64_t ldw, int64_t M, int64_t K, float* out) {
  const int64_t panels = (M + kMR - 1) / kMR;
  for (int64_t p = 0; p < panels; ++p)
    for (int64_t k = 0; k < K; ++k)
      for (int64_t r = 0; r < kMR; ++r) {
        const int64_t m = p * kMR + r;
        out[(p * K + k) * kMR + r] = m < M ? w[m * ldw + k] : 0.0f;
      }
}

}  // namespace finch::quant::kernels::f32k
#endif  // HWY_ONCE
