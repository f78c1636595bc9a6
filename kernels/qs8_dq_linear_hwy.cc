// Highway epilogue of QDynamicLinear (dq_detail::epilogue in qs8_dq_linear.h): vector FMA where
// it is native, the scalar std::fma where it is not, so every target rounds once.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/qs8_dq_linear.h"
#include "kernels/qs8_gemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_dq_linear_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

#if HWY_TARGET == HWY_AVX3_DL
#include <immintrin.h>
#endif

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::dq_detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The reference's scalar step; also the tail of the vector loop (same value: both fused).
inline float scalar_one(int32_t acc, int32_t wsum, int32_t zx, float s_x, float s_w, float bias) {
  const auto a = int32_t(uint32_t(acc) - uint32_t(zx) * uint32_t(wsum));
  return std::fma(float(a), s_x * s_w, bias);
}

void Epilogue(const int32_t* HWY_RESTRICT acc, const int32_t* HWY_RESTRICT wsum, int32_t zx, float s_x,
              const float* HWY_RESTRICT s_w, const float* HWY_RESTRICT bias, int64_t n, float* HWY_RESTRICT y) {
  int64_t i = 0;
#if HWY_NATIVE_FMA
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const int64_t L = int64_t(hn::Lanes(df));
  const auto vz = hn::Set(di, zx);
  const auto vs = hn::Set(df, s_x);
  for (; i + L <= n; i += L) {
    // Wrapping int32 arithmetic: Mul keeps the low 32 bits, as the scalar uint32 form does.
    const auto a = hn::Sub(hn::LoadU(di, acc + i), hn::Mul(vz, hn::LoadU(di, wsum + i)));
    const auto sc = hn::Mul(vs, hn::LoadU(df, s_w + i));
    hn::StoreU(hn::MulAdd(hn::ConvertTo(df, a), sc, hn::LoadU(df, bias + i)), df, y + i);
  }
#endif
  for (; i < n; ++i) y[i] = scalar_one(acc[i], wsum[i], zx, s_x, s_w[i], bias[i]);
}

bool MinMaxFinite(const float* HWY_RESTRICT x, int64_t n, float* lo, float* hi) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  float l = x[0], h = x[0];
  bool ok = true;
  int64_t i = 0;
  if (n >= L) {
    auto vl = hn::LoadU(d, x), vh = vl;
    auto fin = hn::IsFinite(vl);
    for (i = L; i + L <= n; i += L) {
      const auto v = hn::LoadU(d, x + i);
      vl = hn::Min(vl, v), vh = hn::Max(vh, v);
      fin = hn::And(fin, hn::IsFinite(v));
    }
    ok = hn::AllTrue(d, fin);
    l = hn::GetLane(hn::MinOfLanes(d, vl)), h = hn::GetLane(hn::MaxOfLanes(d, vh));
  }
  for (; i < n; ++i) {
    ok = ok && std::isfinite(x[i]);
    l = std::min(l, x[i]), h = std::max(h, x[i]);
  }
  *lo = l, *hi = h;
  return ok;
}

#if HWY_TARGET == HWY_AVX3_DL
// 64 channels of the packed [K4][OCp][4] layout: one broadcast 4-byte x group feeds four
// vpdpbusd of 16 channels each, so no horizontal sums and K is padded to 4, not 64. Even and
// odd groups go to separate accumulators (8 chains hide vpdpbusd's latency); int32 adds wrap,
// so the sums equal the row kernel's modulo 2^32.
inline __m512i broadcast4(const uint8_t* x) {
  uint32_t xw;
  std::memcpy(&xw, x, 4);
  return _mm512_set1_epi32(int32_t(xw));
}

// Named accumulators (not an array): an array with a lambda compiled to register moves and
// stack spills around every vpdpbusd.
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void dot_block_vnni(const uint8_t* x, const int8_t* w,
                                                                           int64_t K4, int64_t OCp, int64_t m,
                                                                           int32_t* acc) {
  const __m512i z = _mm512_setzero_si512();
  __m512i a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
  const int64_t stride = OCp * 4;
  int64_t k4 = 0;
  for (; k4 + 2 <= K4; k4 += 2) {
    const __m512i x0 = broadcast4(x + 4 * k4), x1 = broadcast4(x + 4 * k4 + 4);
    const int8_t* w0 = w + k4 * stride;
    const int8_t* w1 = w0 + stride;
    a0 = _mm512_dpbusd_epi32(a0, x0, _mm512_loadu_si512(w0));
    a1 = _mm512_dpbusd_epi32(a1, x0, _mm512_loadu_si512(w0 + 64));
    a2 = _mm512_dpbusd_epi32(a2, x0, _mm512_loadu_si512(w0 + 128));
    a3 = _mm512_dpbusd_epi32(a3, x0, _mm512_loadu_si512(w0 + 192));
    b0 = _mm512_dpbusd_epi32(b0, x1, _mm512_loadu_si512(w1));
    b1 = _mm512_dpbusd_epi32(b1, x1, _mm512_loadu_si512(w1 + 64));
    b2 = _mm512_dpbusd_epi32(b2, x1, _mm512_loadu_si512(w1 + 128));
    b3 = _mm512_dpbusd_epi32(b3, x1, _mm512_loadu_si512(w1 + 192));
  }
  if (k4 < K4) {
    const __m512i x0 = broadcast4(x + 4 * k4);
    const int8_t* w0 = w + k4 * stride;
    a0 = _mm512_dpbusd_epi32(a0, x0, _mm512_loadu_si512(w0));
    a1 = _mm512_dpbusd_epi32(a1, x0, _mm512_loadu_si512(w0 + 64));
    a2 = _mm512_dpbusd_epi32(a2, x0, _mm512_loadu_si512(w0 + 128));
    a3 = _mm512_dpbusd_epi32(a3, x0, _mm512_loadu_si512(w0 + 192));
  }
  a0 = _mm512_add_epi32(a0, b0), a1 = _mm512_add_epi32(a1, b1);
  a2 = _mm512_add_epi32(a2, b2), a3 = _mm512_add_epi32(a3, b3);
  if (m == 64) {
    _mm512_storeu_si512(acc, a0), _mm512_storeu_si512(acc + 16, a1);
    _mm512_storeu_si512(acc + 32, a2), _mm512_storeu_si512(acc + 48, a3);
    return;
  }
  alignas(64) int32_t tmp[64];
  _mm512_store_si512(tmp, a0), _mm512_store_si512(tmp + 16, a1);
  _mm512_store_si512(tmp + 32, a2), _mm512_store_si512(tmp + 48, a3);
  std::memcpy(acc, tmp, size_t(m) * sizeof(int32_t));
}

// Four rows at once over the same 64 channels: each weight vector loaded once feeds four
// vpdpbusd (one per row), so a long batch of rows (a transformer's tokens) reads the weights a
// quarter as often as four dot_block_vnni calls; 16 accumulators are 16 independent chains.
#define FINCH_DQ_ROW4(r, xp)                                   \
  {                                                            \
    const __m512i xb = broadcast4((xp) + 4 * k4);              \
    r##0 = _mm512_dpbusd_epi32(r##0, xb, w0);                  \
    r##1 = _mm512_dpbusd_epi32(r##1, xb, w1);                  \
    r##2 = _mm512_dpbusd_epi32(r##2, xb, w2);                  \
    r##3 = _mm512_dpbusd_epi32(r##3, xb, w3);                  \
  }
__attribute__((target(HWY_TARGET_STR ",avx512vnni"))) void dot_block4_vnni(const uint8_t* x, int64_t x_stride,
                                                                            const int8_t* w, int64_t K4, int64_t OCp,
                                                                            int64_t m, int32_t* acc, int64_t acc_stride) {
  const __m512i z = _mm512_setzero_si512();
  __m512i a0 = z, a1 = z, a2 = z, a3 = z, b0 = z, b1 = z, b2 = z, b3 = z;
  __m512i c0 = z, c1 = z, c2 = z, c3 = z, d0 = z, d1 = z, d2 = z, d3 = z;
  const int64_t stride = OCp * 4;
  const uint8_t *xa = x, *xb_ = x + x_stride, *xc = x + 2 * x_stride, *xd = x + 3 * x_stride;
  for (int64_t k4 = 0; k4 < K4; ++k4) {
    const int8_t* wp = w + k4 * stride;
    const __m512i w0 = _mm512_loadu_si512(wp), w1 = _mm512_loadu_si512(wp + 64);
    const __m512i w2 = _mm512_loadu_si512(wp + 128), w3 = _mm512_loadu_si512(wp + 192);
    FINCH_DQ_ROW4(a, xa)
    FINCH_DQ_ROW4(b, xb_)
    FINCH_DQ_ROW4(c, xc)
    FINCH_DQ_ROW4(d, xd)
  }
  alignas(64) int32_t tmp[64];
  const __m512i rows[4][4] = {{a0, a1, a2, a3}, {b0, b1, b2, b3}, {c0, c1, c2, c3}, {d0, d1, d2, d3}};
  for (int r = 0; r < 4; ++r) {
    int32_t* out = acc + r * acc_stride;
    if (m == 64) {
      for (int j = 0; j < 4; ++j) _mm512_storeu_si512(out + 16 * j, rows[r][j]);
      continue;
    }
    for (int j = 0; j < 4; ++j) _mm512_store_si512(tmp + 16 * j, rows[r][j]);
    std::memcpy(out, tmp, size_t(m) * sizeof(int32_t));
  }
}
#undef FINCH_DQ_ROW4
#endif

// dot_block for `nrows` rows of x (row stride x_stride bytes) into acc rows (stride acc_stride):
// four at a time through the four-row kernel on AVX-512 VNNI, one at a time elsewhere.
void DotBlockRows(const uint8_t* x, int64_t x_stride, int64_t nrows, const int8_t* rows, int64_t Kp,
                  const int8_t* packed, int64_t K4, int64_t OCp, int64_t oc0, int64_t m, int32_t* acc,
                  int64_t acc_stride) {
  int64_t r = 0;
#if HWY_TARGET == HWY_AVX3_DL
  for (; r + 4 <= nrows; r += 4)
    dot_block4_vnni(x + r * x_stride, x_stride, packed + oc0 * 4, K4, OCp, m, acc + r * acc_stride, acc_stride);
  for (; r < nrows; ++r) dot_block_vnni(x + r * x_stride, packed + oc0 * 4, K4, OCp, m, acc + r * acc_stride);
#else
  (void)packed, (void)K4, (void)OCp;
  for (; r < nrows; ++r) qs8::qu8s8_dot_rows(x + r * x_stride, rows + oc0 * Kp, m, Kp, acc + r * acc_stride);
#endif
}

// acc[i] = Σ_k x[k]·w[oc0 + i][k] (wrapping int32) for i < m <= 64, oc0 a multiple of 64.
void DotBlock(const uint8_t* x, const int8_t* rows, int64_t Kp, const int8_t* packed, int64_t K4, int64_t OCp,
              int64_t oc0, int64_t m, int32_t* acc) {
#if HWY_TARGET == HWY_AVX3_DL
  (void)rows, (void)Kp;
  dot_block_vnni(x, packed + oc0 * 4, K4, OCp, m, acc);
#else
  (void)packed, (void)K4, (void)OCp;
  qs8::qu8s8_dot_rows(x, rows + oc0 * Kp, m, Kp, acc);
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::quant::kernels::dq_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels::dq_detail {
HWY_EXPORT(Epilogue);
HWY_EXPORT(DotBlock);
HWY_EXPORT(MinMaxFinite);
HWY_EXPORT(DotBlockRows);

void dot_block_rows(const uint8_t* x, int64_t x_stride, int64_t nrows, const int8_t* rows, int64_t Kp,
                    const int8_t* packed, int64_t K4, int64_t OCp, int64_t oc0, int64_t m, int32_t* acc,
                    int64_t acc_stride) {
  FINCH_DISPATCH(DotBlockRows)(x, x_stride, nrows, rows, Kp, packed, K4, OCp, oc0, m, acc, acc_stride);
}

bool min_max_finite(const float* x, int64_t n, float* lo, float* hi) {
  return FINCH_DISPATCH(MinMaxFinite)(x, n, lo, hi);
}

void dot_block(const uint8_t* x, const int8_t* rows, int64_t Kp, const int8_t* packed, int64_t K4, int64_t OCp,
               int64_t oc0, int64_t m, int32_t* acc) {
  FINCH_DISPATCH(DotBlock)(x, rows, Kp, packed, K4, OCp, oc0, m, acc);
}

void epilogue(const int32_t* acc, const int32_t* wsum, int32_t zx, float s_x, const float* s_w, const float* bias,
              int64_t n, float* y) {
  FINCH_DISPATCH(Epilogue)(acc, wsum, zx, s_x, s_w, bias, n, y);
}
}  // namespace finch::quant::kernels::dq_detail
#endif
