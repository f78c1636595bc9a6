// Highway micro-kernels of kernels/sparse_gemm.h: per nonzero weight, one broadcast and one
// multiply-add over a vector of activation columns (pixels), 4 vectors at a time so that a row's
// nonzeros are walked once per 4·L columns; int8 requantizes with requant_hwy-inl.h's exact rule.
#include <algorithm>
#include <cmath>

#include "kernels/requant.h"
#include "kernels/sparse_gemm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sparse_gemm_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "kernels/requant_hwy-inl.h"

HWY_BEFORE_NAMESPACE();
namespace finch::quant::kernels::spk {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;
using kernels::HWY_NAMESPACE::RequantParams;
using kernels::HWY_NAMESPACE::Requantize;
using kernels::HWY_NAMESPACE::RequantHighApplies;
using kernels::HWY_NAMESPACE::RequantizeHigh;
using kernels::HWY_NAMESPACE::RequantVectorApplies;

// ops::relu / ops::relu6's formulas (as f32_eltwise_hwy.cc): NaN passes through.
template <class D, class V>
HWY_INLINE V activate(D d, V v, FusedAct act) {
  if (act == FusedAct::relu) return hn::IfThenZeroElse(hn::Lt(v, hn::Zero(d)), v);
  if (act == FusedAct::relu6)
    return hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, hn::Zero(d)), hn::Set(d, 6.0f)));
  return v;
}

// U vectors of columns n .. n + U·L − 1 of rows m0 .. m1 − 1.
template <int U, class D>
HWY_INLINE void f32_cols(D d, const SparseRows<float>& w, const float* bias, FusedAct act, const float* x,
                         const int64_t* koff, int64_t n, int64_t m0, int64_t m1, float* y, int64_t ldy) {
  const int64_t L = int64_t(hn::Lanes(d));
  const int32_t* HWY_RESTRICT ptr = w.ptr.data();
  const int32_t* HWY_RESTRICT col = w.col.data();
  const float* HWY_RESTRICT val = w.val.data();
  for (int64_t m = m0; m < m1; ++m) {
    const auto b = hn::Set(d, bias ? bias[m] : 0.0f);
    auto a0 = b, a1 = b, a2 = b, a3 = b;
    for (int32_t j = ptr[m]; j < ptr[m + 1]; ++j) {
      const float* p = x + koff[col[j]] + n;
      const auto v = hn::Set(d, val[j]);
      a0 = hn::MulAdd(v, hn::LoadU(d, p), a0);
      if (U > 1) a1 = hn::MulAdd(v, hn::LoadU(d, p + L), a1);
      if (U > 2) a2 = hn::MulAdd(v, hn::LoadU(d, p + 2 * L), a2);
      if (U > 3) a3 = hn::MulAdd(v, hn::LoadU(d, p + 3 * L), a3);
    }
    float* o = y + m * ldy + n;
    hn::StoreU(activate(d, a0, act), d, o);
    if (U > 1) hn::StoreU(activate(d, a1, act), d, o + L);
    if (U > 2) hn::StoreU(activate(d, a2, act), d, o + 2 * L);
    if (U > 3) hn::StoreU(activate(d, a3, act), d, o + 3 * L);
  }
}

void F32Spmm(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, const int64_t* koff,
             int64_t n0, int64_t n1, int64_t m0, int64_t m1, float* y, int64_t ldy) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  int64_t n = n0;
  // Columns outer, rows inner: the K × 4L block of x stays in cache while every row reads it.
  for (; n + 4 * L <= n1; n += 4 * L) f32_cols<4>(d, w, bias, act, x, koff, n, m0, m1, y, ldy);
  for (; n + L <= n1; n += L) f32_cols<1>(d, w, bias, act, x, koff, n, m0, m1, y, ldy);
  if (n < n1) sparse_ref::f32_spmm(w, bias, act, x, koff, n, n1, m0, m1, y, ldy);
}

void F32Spmv(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, int64_t m0, int64_t m1,
             float* y) {
  const hn::ScalableTag<float> d;
  const hn::RebindToSigned<decltype(d)> di;
  const int64_t L = int64_t(hn::Lanes(d));
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t j0 = w.ptr[size_t(m)], j1 = w.ptr[size_t(m + 1)];
    auto acc = hn::Zero(d);
    int64_t j = j0;
    for (; j + L <= j1; j += L)
      acc = hn::MulAdd(hn::LoadU(d, w.val.data() + j), hn::GatherIndex(d, x, hn::LoadU(di, w.col.data() + j)), acc);
    float s = hn::GetLane(hn::SumOfLanes(d, acc));
    for (; j < j1; ++j) s = std::fma(w.val[size_t(j)], x[w.col[size_t(j)]], s);
    s += bias ? bias[m] : 0.0f;
    HWY_ALIGN float t[HWY_MAX_BYTES / sizeof(float)] = {};
    t[0] = s;
    y[m] = hn::GetLane(activate(d, hn::Load(d, t), act));
  }
}

// Codes of the int32 lanes acc (already clamped to the output range) stored as bytes at out.
template <class D32>
HWY_INLINE void store_codes(D32 /*d32*/, hn::Vec<D32> c, bool u8, uint8_t* out) {
  if (u8) {
    const hn::Rebind<uint8_t, D32> d8;
    hn::StoreU(hn::DemoteTo(d8, c), d8, out);
  } else {
    const hn::Rebind<int8_t, D32> d8;
    hn::StoreU(hn::DemoteTo(d8, c), d8, reinterpret_cast<int8_t*>(out));
  }
}

// The codes of one row's accumulator vector a stored at dst.
template <class D32>
HWY_INLINE void requant_store(D32 d32, hn::Vec<D32> a, const qs8::RowQuant& q, const qs8::OutQuant& o, uint8_t* dst) {
  const int shift = q.m.total_shift();
  if (!RequantVectorApplies(shift)) {  // a real multiplier >= 2^30: the scalar rule
    HWY_ALIGN int32_t acc[HWY_MAX_BYTES / sizeof(int32_t)];
    hn::Store(a, d32, acc);
    for (size_t i = 0; i < hn::Lanes(d32); ++i) {
      const int32_t c = quant::requantize(acc[i], q.m, o.z_out, o.qmin, o.qmax);
      dst[i] = o.u8 ? uint8_t(c) : uint8_t(int8_t(c));
    }
    return;
  }
  const RequantParams rp(q.m.multiplier, shift, o.z_out, o.qmin, o.qmax);
  // Every ordinary layer's shift takes the int32-lane form, about half the work.
  store_codes(d32, RequantHighApplies(rp) ? RequantizeHigh(d32, a, rp, o.qmin, o.qmax) : Requantize(d32, a, rp), o.u8,
              dst);
}

#if HWY_TARGET == HWY_AVX3_DL
// c += dot4(x u8, w i8) per int32 lane (inline asm, as qs8_gemm_vnni-inl.h says why).
HWY_INLINE void QuadDot(__m512i& c, __m512i x, __m512i w) { asm("vpdpbusd %2, %1, %0" : "+v"(c) : "v"(x), "v"(w)); }

// U × 16 pixels of rows m0 .. m1 − 1 from quads: one load and one vpdpbusd per kept quad per 16.
template <int U>
HWY_INLINE void quad_cols(const SparseRows<int32_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o,
                          const uint8_t* x, const int64_t* koff, int64_t n, int64_t m0, int64_t m1, uint8_t* out,
                          int64_t ldy) {
  const hn::Full512<int32_t> d32;
  const int32_t* HWY_RESTRICT ptr = w.ptr.data();
  const int32_t* HWY_RESTRICT col = w.col.data();
  const int32_t* HWY_RESTRICT val = w.val.data();
  for (int64_t m = m0; m < m1; ++m) {
    __m512i a0 = _mm512_set1_epi32(q[m].offset), a1 = a0, a2 = a0, a3 = a0;
    for (int32_t j = ptr[m]; j < ptr[m + 1]; ++j) {
      const uint8_t* p = x + koff[col[j]] + 4 * n;
      const __m512i wv = _mm512_set1_epi32(val[j]);
      QuadDot(a0, _mm512_loadu_si512(p), wv);
      if (U > 1) QuadDot(a1, _mm512_loadu_si512(p + 64), wv);
      if (U > 2) QuadDot(a2, _mm512_loadu_si512(p + 128), wv);
      if (U > 3) QuadDot(a3, _mm512_loadu_si512(p + 192), wv);
    }
    uint8_t* dst = out + m * ldy + n;
    requant_store(d32, hn::Vec512<int32_t>{a0}, q[m], o, dst);
    if (U > 1) requant_store(d32, hn::Vec512<int32_t>{a1}, q[m], o, dst + 16);
    if (U > 2) requant_store(d32, hn::Vec512<int32_t>{a2}, q[m], o, dst + 32);
    if (U > 3) requant_store(d32, hn::Vec512<int32_t>{a3}, q[m], o, dst + 48);
  }
}
#endif

bool QuadKernel() { return HWY_TARGET == HWY_AVX3_DL; }

void Qs8SpmmQuad(const SparseRows<int32_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
                 const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy) {
  int64_t n = n0;
#if HWY_TARGET == HWY_AVX3_DL
  for (; n + 64 <= n1; n += 64) quad_cols<4>(w, q, o, x, koff, n, m0, m1, out, ldy);
  for (; n + 16 <= n1; n += 16) quad_cols<1>(w, q, o, x, koff, n, m0, m1, out, ldy);
#endif
  if (n < n1) sparse_ref::qs8_spmm_quad(w, q, o, x, koff, n, n1, m0, m1, out, ldy);
}

template <int U, class D32>
HWY_INLINE void qs8_cols(D32 d32, const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o,
                         const uint8_t* x, const int64_t* koff, int64_t n, int64_t m0, int64_t m1, uint8_t* out,
                         int64_t ldy) {
  const hn::Rebind<uint8_t, D32> du8;
  const int64_t L = int64_t(hn::Lanes(d32));
  const int32_t* HWY_RESTRICT ptr = w.ptr.data();
  const int32_t* HWY_RESTRICT col = w.col.data();
  const int8_t* HWY_RESTRICT val = w.val.data();
  for (int64_t m = m0; m < m1; ++m) {
    const auto b = hn::Set(d32, q[m].offset);
    auto a0 = b, a1 = b, a2 = b, a3 = b;
    for (int32_t j = ptr[m]; j < ptr[m + 1]; ++j) {
      const uint8_t* p = x + koff[col[j]] + n;
      const auto v = hn::Set(d32, int32_t(val[j]));
      // u8 × i8 products fit int16, but int32 lanes keep the sum exact for any K (wrapping as
      // the dense kernels' int32 sums do).
      a0 = hn::Add(a0, hn::Mul(v, hn::PromoteTo(d32, hn::LoadU(du8, p))));
      if (U > 1) a1 = hn::Add(a1, hn::Mul(v, hn::PromoteTo(d32, hn::LoadU(du8, p + L))));
      if (U > 2) a2 = hn::Add(a2, hn::Mul(v, hn::PromoteTo(d32, hn::LoadU(du8, p + 2 * L))));
      if (U > 3) a3 = hn::Add(a3, hn::Mul(v, hn::PromoteTo(d32, hn::LoadU(du8, p + 3 * L))));
    }
    uint8_t* dst = out + m * ldy + n;
    requant_store(d32, a0, q[m], o, dst);
    if (U > 1) requant_store(d32, a1, q[m], o, dst + L);
    if (U > 2) requant_store(d32, a2, q[m], o, dst + 2 * L);
    if (U > 3) requant_store(d32, a3, q[m], o, dst + 3 * L);
  }
}

void Qs8Spmm(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
             const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy) {
  const hn::ScalableTag<int32_t> d32;
  const int64_t L = int64_t(hn::Lanes(d32));
  int64_t n = n0;
  for (; n + 4 * L <= n1; n += 4 * L) qs8_cols<4>(d32, w, q, o, x, koff, n, m0, m1, out, ldy);
  for (; n + L <= n1; n += L) qs8_cols<1>(d32, w, q, o, x, koff, n, m0, m1, out, ldy);
  if (n < n1) sparse_ref::qs8_spmm(w, q, o, x, koff, n, n1, m0, m1, out, ldy);
}

void Qs8Spmv(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const int32_t* xi,
             int64_t m0, int64_t m1, uint8_t* out) {
  const hn::ScalableTag<int32_t> d32;
  const hn::Rebind<int8_t, decltype(d32)> d8;
  const int64_t L = int64_t(hn::Lanes(d32));
  for (int64_t m = m0; m < m1; ++m) {
    const int64_t j0 = w.ptr[size_t(m)], j1 = w.ptr[size_t(m + 1)];
    auto acc = hn::Zero(d32);
    int64_t j = j0;
    for (; j + L <= j1; j += L)
      acc = hn::Add(acc, hn::Mul(hn::PromoteTo(d32, hn::LoadU(d8, w.val.data() + j)),
                                 hn::GatherIndex(d32, xi, hn::LoadU(d32, w.col.data() + j))));
    // Integer sums: any order gives the same wrapped int32.
    uint32_t s = uint32_t(hn::GetLane(hn::SumOfLanes(d32, acc))) + uint32_t(q[m].offset);
    for (; j < j1; ++j) s += uint32_t(int32_t(w.val[size_t(j)]) * xi[w.col[size_t(j)]]);
    const int32_t c = quant::requantize(int32_t(s), q[m].m, o.z_out, o.qmin, o.qmax);
    out[m] = o.u8 ? uint8_t(c) : uint8_t(int8_t(c));
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::quant::kernels::spk
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels {
namespace spk {
HWY_EXPORT(F32Spmm);
HWY_EXPORT(F32Spmv);
HWY_EXPORT(Qs8Spmm);
HWY_EXPORT(Qs8Spmv);
HWY_EXPORT(Qs8SpmmQuad);
HWY_EXPORT(QuadKernel);
}  // namespace spk
bool qs8_quad_kernel() { return FINCH_DISPATCH(spk::QuadKernel)(); }
void qs8_spmm_quad(const SparseRows<int32_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
                   const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy) {
  FINCH_DISPATCH(spk::Qs8SpmmQuad)(w, q, o, x, koff, n0, n1, m0, m1, out, ldy);
}
void f32_spmm(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, const int64_t* koff,
              int64_t n0, int64_t n1, int64_t m0, int64_t m1, float* y, int64_t ldy) {
  FINCH_DISPATCH(spk::F32Spmm)(w, bias, act, x, koff, n0, n1, m0, m1, y, ldy);
}
void f32_spmv(const SparseRows<float>& w, const float* bias, FusedAct act, const float* x, int64_t m0, int64_t m1,
              float* y) {
  FINCH_DISPATCH(spk::F32Spmv)(w, bias, act, x, m0, m1, y);
}
void qs8_spmm(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const uint8_t* x,
              const int64_t* koff, int64_t n0, int64_t n1, int64_t m0, int64_t m1, uint8_t* out, int64_t ldy) {
  FINCH_DISPATCH(spk::Qs8Spmm)(w, q, o, x, koff, n0, n1, m0, m1, out, ldy);
}
void qs8_spmv(const SparseRows<int8_t>& w, const qs8::RowQuant* q, const qs8::OutQuant& o, const int32_t* xi,
              int64_t m0, int64_t m1, uint8_t* out) {
  FINCH_DISPATCH(spk::Qs8Spmv)(w, q, o, xi, m0, m1, out);
}
}  // namespace finch::quant::kernels
#endif  // HWY_ONCE
