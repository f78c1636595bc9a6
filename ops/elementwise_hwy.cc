// Highway kernels for the F32 elementwise ops: broadcasting binary rows, comparisons, where,
// unary math (exp/log/sqrt/…, scalar ops, clamp) and the sum/accumulate helpers of sum_to.
//
// Every loop runs whole vectors and finishes the tail through a padded stack buffer with the
// same vector code, so tails round exactly like the body.
#include <cmath>
#include <cstring>
#include <limits>

#include "ops/elementwise.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/elementwise_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "hwy/contrib/math/math-inl.h"

HWY_BEFORE_NAMESPACE();
namespace finch::ops::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;
// Memory-bound loops (one arithmetic op per element) run on 128-bit vectors: measured on an
// AVX-512 EPYC, streaming add over 16 MB arrays took ~1.6 ms with 128-bit vectors against
// ~2.1 ms with 512-bit ones (the compute is free either way; wide accesses only cost bandwidth
// here). Transcendental maps keep the full width.
using DM = hn::CappedTag<float, 4>;
constexpr size_t kMaxLanes = HWY_MAX_BYTES / sizeof(float);

// e^x with IEEE edges Highway's Exp leaves out: +inf above the overflow point, NaN in → NaN out.
HWY_INLINE VF ExpF(DF d, VF x) {
  const VF r = hn::Exp(d, hn::Min(x, hn::Set(d, 100.0f)));
  const VF big = hn::IfThenElse(hn::Gt(x, hn::Set(d, 88.72283935546875f)),
                                hn::Set(d, std::numeric_limits<float>::infinity()), r);
  return hn::IfThenElse(hn::IsNaN(x), x, big);
}

// ln x with the edges Highway's Log (valid on normal positive floats) leaves out: subnormals are
// scaled by 2^24 first; 0 → −inf, x < 0 → NaN, +inf → +inf, NaN → NaN.
HWY_INLINE VF LogF(DF d, VF x) {
  const auto sub = hn::Lt(x, hn::Set(d, std::numeric_limits<float>::min()));
  const VF xs = hn::IfThenElse(sub, hn::Mul(x, hn::Set(d, 16777216.0f)), x);
  VF r = hn::Log(d, hn::IfThenElse(hn::Gt(xs, hn::Zero(d)), xs, hn::Set(d, 1.0f)));
  r = hn::IfThenElse(sub, hn::Sub(r, hn::Set(d, 16.635532333438687f)), r);  // 24·ln 2
  const float inf = std::numeric_limits<float>::infinity();
  r = hn::IfThenElse(hn::Eq(x, hn::Zero(d)), hn::Set(d, -inf), r);
  r = hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Set(d, std::numeric_limits<float>::quiet_NaN()),
                     r);
  r = hn::IfThenElse(hn::Eq(x, hn::Set(d, inf)), x, r);
  return hn::IfThenElse(hn::IsNaN(x), x, r);
}

// Applies f(a_vec, b_vec) over n elements with operand strides 0 or 1 (else gathered).
template <class F>
HWY_INLINE void Map2(float* out, const float* a, int64_t sa, const float* b, int64_t sb, int64_t n,
                     const F& f) {
  const DM d;
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  if (sa == 1 && sb == 1) {
    for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, a + i), hn::LoadU(d, b + i)), d, out + i);
  } else if (sa == 0 && sb == 1) {
    const auto va = hn::Set(d, a[0]);
    for (; i + N <= n; i += N) hn::StoreU(f(va, hn::LoadU(d, b + i)), d, out + i);
  } else if (sa == 1 && sb == 0) {
    const auto vb = hn::Set(d, b[0]);
    for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, a + i), vb), d, out + i);
  }
  // Tail (and general strides): gather into padded buffers, run the same vector code.
  HWY_ALIGN float ba[kMaxLanes] = {}, bb[kMaxLanes] = {}, bo[kMaxLanes];
  for (; i < n; i += N) {
    const int64_t m = std::min(N, n - i);
    for (int64_t j = 0; j < m; ++j) ba[j] = a[(i + j) * sa], bb[j] = b[(i + j) * sb];
    hn::Store(f(hn::Load(d, ba), hn::Load(d, bb)), d, bo);
    std::memcpy(out + i, bo, size_t(m) * sizeof(float));
  }
}

template <class D, class F>
HWY_INLINE void Map1(D d, float* out, const float* x, int64_t n, const F& f) {
  const int64_t N = int64_t(hn::Lanes(d));
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x + i)), d, out + i);
  if (i < n) {
    HWY_ALIGN float bx[kMaxLanes] = {}, bo[kMaxLanes];
    std::memcpy(bx, x + i, size_t(n - i) * sizeof(float));
    hn::Store(f(hn::Load(d, bx)), d, bo);
    std::memcpy(out + i, bo, size_t(n - i) * sizeof(float));
  }
}

void BinaryF32(BinaryOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb,
               int64_t n, float alpha) {
  const DM d;
  const auto valpha = hn::Set(d, alpha);
  switch (op) {
    case BinaryOp::add:
      if (alpha == 1.0f) return Map2(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Add(x, y); });
      return Map2(out, a, sa, b, sb, n, [&](auto x, auto y) { return hn::MulAdd(y, valpha, x); });
    case BinaryOp::sub:
      if (alpha == 1.0f) return Map2(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Sub(x, y); });
      return Map2(out, a, sa, b, sb, n, [&](auto x, auto y) { return hn::NegMulAdd(y, valpha, x); });
    case BinaryOp::mul:
      return Map2(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Mul(x, y); });
    case BinaryOp::div:
      return Map2(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Div(x, y); });
    case BinaryOp::pow:  // no vector pow in Highway 1.0.3; libm keeps std::pow's edge cases
      for (int64_t i = 0; i < n; ++i) out[i] = std::pow(a[i * sa], b[i * sb]);
      return;
  }
}

template <class M>
HWY_INLINE void CompareMap(bool* out, const float* a, int64_t sa, const float* b, int64_t sb,
                           int64_t n, const M& cmp) {
  const DM d;
  const hn::RebindToSigned<DM> di;
  const hn::Rebind<uint8_t, DM> du8;
  const int64_t N = int64_t(hn::Lanes(d));
  HWY_ALIGN float ba[kMaxLanes] = {}, bb[kMaxLanes] = {};
  HWY_ALIGN uint8_t bo[kMaxLanes];
  for (int64_t i = 0; i < n; i += N) {
    const int64_t m = std::min(N, n - i);
    hn::Vec<DM> va, vb;
    if (sa == 1 && m == N) {
      va = hn::LoadU(d, a + i);
    } else {
      for (int64_t j = 0; j < m; ++j) ba[j] = a[(i + j) * sa];
      va = hn::Load(d, ba);
    }
    if (sb == 1 && m == N) {
      vb = hn::LoadU(d, b + i);
    } else {
      for (int64_t j = 0; j < m; ++j) bb[j] = b[(i + j) * sb];
      vb = hn::Load(d, bb);
    }
    const auto ones = hn::And(hn::BitCast(di, hn::VecFromMask(d, cmp(va, vb))), hn::Set(di, 1));
    hn::Store(hn::DemoteTo(du8, ones), du8, bo);
    std::memcpy(out + i, bo, size_t(m));  // bool is one byte holding 0 or 1
  }
}

void CompareF32(CompareOp op, bool* out, const float* a, int64_t sa, const float* b, int64_t sb,
                int64_t n) {
  switch (op) {
    case CompareOp::eq: return CompareMap(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Eq(x, y); });
    // IEEE: NaN != anything is true; x86's ordered NEQ predicate says false, so negate Eq.
    case CompareOp::ne: return CompareMap(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Not(hn::Eq(x, y)); });
    case CompareOp::lt: return CompareMap(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Lt(x, y); });
    case CompareOp::le: return CompareMap(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Le(x, y); });
    case CompareOp::gt: return CompareMap(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Gt(x, y); });
    case CompareOp::ge: return CompareMap(out, a, sa, b, sb, n, [](auto x, auto y) { return hn::Ge(x, y); });
  }
}

// Loads lanes [i, i+m) of a strided operand: a vector load for stride 1, a broadcast for 0,
// a gather through `buf` otherwise (or for a partial tail).
template <class D>
HWY_INLINE hn::Vec<D> LoadStrided(D d, const float* p, int64_t stride, int64_t i, int64_t m,
                                  float* buf) {
  const int64_t N = int64_t(hn::Lanes(d));
  if (stride == 1 && m == N) return hn::LoadU(d, p + i);
  if (stride == 0) return hn::Set(d, p[0]);
  for (int64_t j = 0; j < m; ++j) buf[j] = p[(i + j) * stride];
  return hn::Load(d, buf);
}

void WhereF32(float* out, const bool* c, int64_t sc, const float* a, int64_t sa, const float* b,
              int64_t sb, int64_t n) {
  const DM d;
  const hn::RebindToSigned<DM> di;
  const hn::Rebind<uint8_t, DM> du8;
  const int64_t N = int64_t(hn::Lanes(d));
  HWY_ALIGN float ba[kMaxLanes] = {}, bb[kMaxLanes] = {}, bo[kMaxLanes];
  HWY_ALIGN uint8_t bc[kMaxLanes] = {};
  for (int64_t i = 0; i < n; i += N) {
    const int64_t m = std::min(N, n - i);
    // bool bytes hold 0 or 1; read them as bytes (contiguous) or gather (strided / tail).
    hn::Vec<decltype(du8)> vc;
    if (sc == 1 && m == N) {
      vc = hn::LoadU(du8, reinterpret_cast<const uint8_t*>(c + i));
    } else {
      for (int64_t j = 0; j < m; ++j) bc[j] = c[(i + j) * sc] ? 1 : 0;
      vc = hn::Load(du8, bc);
    }
    const auto mask = hn::RebindMask(d, hn::Ne(hn::PromoteTo(di, vc), hn::Zero(di)));
    const auto r = hn::IfThenElse(mask, LoadStrided(d, a, sa, i, m, ba), LoadStrided(d, b, sb, i, m, bb));
    if (m == N) {
      hn::StoreU(r, d, out + i);
    } else {
      hn::Store(r, d, bo);
      std::memcpy(out + i, bo, size_t(m) * sizeof(float));
    }
  }
}

void UnaryF32(UnaryOp op, float* out, const float* x, int64_t n, float p0, float p1) {
  const DF d;  // transcendental and divide maps
  const DM m;  // memory-bound maps
  const VF one = hn::Set(d, 1.0f);
  const auto v0 = hn::Set(m, p0), v1 = hn::Set(m, p1);
  switch (op) {
    case UnaryOp::neg: return Map1(m, out, x, n, [](auto v) { return hn::Neg(v); });
    case UnaryOp::exp: return Map1(d, out, x, n, [&](VF v) { return ExpF(d, v); });
    case UnaryOp::log: return Map1(d, out, x, n, [&](VF v) { return LogF(d, v); });
    case UnaryOp::sqrt: return Map1(d, out, x, n, [](VF v) { return hn::Sqrt(v); });
    // 1/sqrt(x) exactly rounded twice, as torch (the rsqrt instruction has only 12 bits).
    case UnaryOp::rsqrt: return Map1(d, out, x, n, [&](VF v) { return hn::Div(one, hn::Sqrt(v)); });
    case UnaryOp::abs: return Map1(m, out, x, n, [](auto v) { return hn::Abs(v); });
    case UnaryOp::add_scalar: return Map1(m, out, x, n, [&](auto v) { return hn::Add(v, v0); });
    case UnaryOp::mul_scalar: return Map1(m, out, x, n, [&](auto v) { return hn::Mul(v, v0); });
    case UnaryOp::clamp:
      // Max then Min: with min > max everything becomes max (torch); NaN stays NaN.
      return Map1(m, out, x, n, [&](auto v) {
        return hn::IfThenElse(hn::IsNaN(v), v, hn::Min(hn::Max(v, v0), v1));
      });
    case UnaryOp::pow_scalar:
      // The exponents torch special-cases, with the same formulas; the rest go to libm.
      if (p0 == 2.0f) return Map1(m, out, x, n, [](auto v) { return hn::Mul(v, v); });
      if (p0 == 3.0f) return Map1(m, out, x, n, [](auto v) { return hn::Mul(hn::Mul(v, v), v); });
      if (p0 == 1.0f) return Map1(m, out, x, n, [](auto v) { return v; });
      if (p0 == 0.5f) return Map1(d, out, x, n, [](VF v) { return hn::Sqrt(v); });
      if (p0 == -0.5f) return Map1(d, out, x, n, [&](VF v) { return hn::Div(one, hn::Sqrt(v)); });
      if (p0 == -1.0f) return Map1(d, out, x, n, [&](VF v) { return hn::Div(one, v); });
      if (p0 == -2.0f) return Map1(d, out, x, n, [&](VF v) { return hn::Div(one, hn::Mul(v, v)); });
      if (p0 == 0.0f) return Map1(m, out, x, n, [&](auto) { return hn::Set(m, 1.0f); });
      for (int64_t i = 0; i < n; ++i) out[i] = std::pow(x[i], p0);
      return;
  }
}

double SumF32(const float* x, int64_t n) {
  const DF d;
  const int64_t N = int64_t(hn::Lanes(d));
  // Four independent vector accumulators (latency hiding), flushed into a double every block
  // so that long runs do not drift (a float accumulator loses ~log2(n) bits).
  constexpr int64_t kBlock = 2048;
  double s = 0;
  int64_t i = 0;
  while (i + 4 * N <= n) {
    VF s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
    const int64_t stop = std::min(n, i + kBlock);
    for (; i + 4 * N <= stop; i += 4 * N) {
      s0 = hn::Add(s0, hn::LoadU(d, x + i));
      s1 = hn::Add(s1, hn::LoadU(d, x + i + N));
      s2 = hn::Add(s2, hn::LoadU(d, x + i + 2 * N));
      s3 = hn::Add(s3, hn::LoadU(d, x + i + 3 * N));
    }
    s += double(hn::GetLane(hn::SumOfLanes(d, hn::Add(hn::Add(s0, s1), hn::Add(s2, s3)))));
  }
  for (; i < n; ++i) s += x[i];
  return s;
}

void AccumulateF32(double* acc, const float* x, int64_t n) {
  const hn::ScalableTag<double> dd;
  const hn::Rebind<float, decltype(dd)> dh;  // half as many floats as a full float vector
  const int64_t N = int64_t(hn::Lanes(dd));
  int64_t i = 0;
  for (; i + N <= n; i += N)
    hn::StoreU(hn::Add(hn::LoadU(dd, acc + i), hn::PromoteTo(dd, hn::LoadU(dh, x + i))), dd, acc + i);
  for (; i < n; ++i) acc[i] += double(x[i]);
}

}  // namespace finch::ops::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops::kernels {

HWY_EXPORT(BinaryF32);
HWY_EXPORT(CompareF32);
HWY_EXPORT(WhereF32);
HWY_EXPORT(UnaryF32);
HWY_EXPORT(SumF32);
HWY_EXPORT(AccumulateF32);

void binary_f32(BinaryOp op, float* out, const float* a, int64_t sa, const float* b, int64_t sb,
                int64_t n, float alpha) {
  FINCH_DISPATCH(BinaryF32)(op, out, a, sa, b, sb, n, alpha);
}
void compare_f32(CompareOp op, bool* out, const float* a, int64_t sa, const float* b, int64_t sb,
                 int64_t n) {
  FINCH_DISPATCH(CompareF32)(op, out, a, sa, b, sb, n);
}
void where_f32(float* out, const bool* c, int64_t sc, const float* a, int64_t sa, const float* b,
               int64_t sb, int64_t n) {
  FINCH_DISPATCH(WhereF32)(out, c, sc, a, sa, b, sb, n);
}
void unary_f32(UnaryOp op, float* out, const float* x, int64_t n, float p0, float p1) {
  FINCH_DISPATCH(UnaryF32)(op, out, x, n, p0, p1);
}
double sum_f32(const float* x, int64_t n) { return FINCH_DISPATCH(SumF32)(x, n); }
void accumulate_f32(double* acc, const float* x, int64_t n) {
  FINCH_DISPATCH(AccumulateF32)(acc, x, n);
}

}  // namespace finch::ops::kernels
#endif  // HWY_ONCE
