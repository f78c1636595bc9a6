// Highway inner loops for batch norm and layer norm over contiguous F32 runs (one run = one
// [n, c] plane of batch norm, or one layer-norm row). Tails shorter than a vector run scalar.
#include <cstdint>

#include "ops/norm.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "ops/norm_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::ops::norm_kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Two accumulators per quantity hide the add latency; the per-run partial sums are returned in
// double so the caller's sum over many runs (N planes of a channel) does not lose precision.
double SumImpl(const float* x, int64_t n) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  auto a0 = hn::Zero(d), a1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    a0 = hn::Add(a0, hn::LoadU(d, x + i));
    a1 = hn::Add(a1, hn::LoadU(d, x + i + L));
  }
  for (; i + L <= n; i += L) a0 = hn::Add(a0, hn::LoadU(d, x + i));
  double s = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
  for (; i < n; ++i) s += x[i];
  return s;
}

double SumSqDevImpl(const float* x, int64_t n, float mean) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto vm = hn::Set(d, mean);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const auto t0 = hn::Sub(hn::LoadU(d, x + i), vm);
    const auto t1 = hn::Sub(hn::LoadU(d, x + i + L), vm);
    a0 = hn::MulAdd(t0, t0, a0);
    a1 = hn::MulAdd(t1, t1, a1);
  }
  for (; i + L <= n; i += L) {
    const auto t0 = hn::Sub(hn::LoadU(d, x + i), vm);
    a0 = hn::MulAdd(t0, t0, a0);
  }
  double s = hn::GetLane(hn::SumOfLanes(d, hn::Add(a0, a1)));
  for (; i < n; ++i) s += double(x[i] - mean) * double(x[i] - mean);
  return s;
}

void ScaleShiftImpl(const float* x, float* y, int64_t n, float a, float b) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto va = hn::Set(d, a), vb = hn::Set(d, b);
  int64_t i = 0;
  for (; i + L <= n; i += L) hn::StoreU(hn::MulAdd(hn::LoadU(d, x + i), va, vb), d, y + i);
  for (; i < n; ++i) y[i] = x[i] * a + b;
}

void SumDyDyxImpl(const float* dy, const float* x, int64_t n, float mean, double* sdy,
                  double* sdyx) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto vm = hn::Set(d, mean);
  auto s0 = hn::Zero(d), s1 = hn::Zero(d), p0 = hn::Zero(d), p1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 2 * L <= n; i += 2 * L) {
    const auto g0 = hn::LoadU(d, dy + i), g1 = hn::LoadU(d, dy + i + L);
    s0 = hn::Add(s0, g0);
    s1 = hn::Add(s1, g1);
    p0 = hn::MulAdd(g0, hn::Sub(hn::LoadU(d, x + i), vm), p0);
    p1 = hn::MulAdd(g1, hn::Sub(hn::LoadU(d, x + i + L), vm), p1);
  }
  for (; i + L <= n; i += L) {
    const auto g0 = hn::LoadU(d, dy + i);
    s0 = hn::Add(s0, g0);
    p0 = hn::MulAdd(g0, hn::Sub(hn::LoadU(d, x + i), vm), p0);
  }
  double s = hn::GetLane(hn::SumOfLanes(d, hn::Add(s0, s1)));
  double p = hn::GetLane(hn::SumOfLanes(d, hn::Add(p0, p1)));
  for (; i < n; ++i) {
    s += dy[i];
    p += double(dy[i]) * double(x[i] - mean);
  }
  *sdy += s;
  *sdyx += p;
}

void Affine2Impl(const float* dy, const float* x, float* dx, int64_t n, float a, float b,
                 float c) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const auto va = hn::Set(d, a), vb = hn::Set(d, b), vc = hn::Set(d, c);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const auto t = hn::MulAdd(hn::LoadU(d, x + i), vb, vc);
    hn::StoreU(hn::MulAdd(hn::LoadU(d, dy + i), va, t), d, dx + i);
  }
  for (; i < n; ++i) dx[i] = a * dy[i] + (b * x[i] + c);
}

void LnForwardRowImpl(const float* x, const float* w, const float* b, float* y, int64_t n,
                      float mean, float rstd) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const float shift = -mean * rstd;
  const auto vr = hn::Set(d, rstd), vs = hn::Set(d, shift);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    auto v = hn::MulAdd(hn::LoadU(d, x + i), vr, vs);
    if (w) v = hn::Mul(v, hn::LoadU(d, w + i));
    if (b) v = hn::Add(v, hn::LoadU(d, b + i));
    hn::StoreU(v, d, y + i);
  }
  for (; i < n; ++i) {
    float v = x[i] * rstd + shift;
    if (w) v *= w[i];
    if (b) v += b[i];
    y[i] = v;
  }
}

void LnBackwardSumsImpl(const float* dy, const float* x, const float* w, int64_t n, float mean,
                        float rstd, double* sg, double* sgx, float* dw, float* db) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const float shift = -mean * rstd;
  const auto vr = hn::Set(d, rstd), vs = hn::Set(d, shift);
  auto a0 = hn::Zero(d), a1 = hn::Zero(d);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const auto g = hn::LoadU(d, dy + i);
    const auto xh = hn::MulAdd(hn::LoadU(d, x + i), vr, vs);
    const auto gw = w ? hn::Mul(g, hn::LoadU(d, w + i)) : g;
    a0 = hn::Add(a0, gw);
    a1 = hn::MulAdd(gw, xh, a1);
    if (dw) hn::StoreU(hn::MulAdd(g, xh, hn::LoadU(d, dw + i)), d, dw + i);
    if (db) hn::StoreU(hn::Add(g, hn::LoadU(d, db + i)), d, db + i);
  }
  double s = hn::GetLane(hn::SumOfLanes(d, a0));
  double p = hn::GetLane(hn::SumOfLanes(d, a1));
  for (; i < n; ++i) {
    const float xh = x[i] * rstd + shift;
    const float gw = w ? dy[i] * w[i] : dy[i];
    s += gw;
    p += double(gw) * xh;
    if (dw) dw[i] += dy[i] * xh;
    if (db) db[i] += dy[i];
  }
  *sg = s;
  *sgx = p;
}

void LnBackwardDxImpl(const float* dy, const float* x, const float* w, float* dx, int64_t n,
                      float mean, float rstd, float mg, float mgx) {
  const hn::ScalableTag<float> d;
  const int64_t L = int64_t(hn::Lanes(d));
  const float shift = -mean * rstd;
  const auto vr = hn::Set(d, rstd), vs = hn::Set(d, shift);
  const auto vmg = hn::Set(d, mg), vmgx = hn::Set(d, mgx);
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    const auto g = hn::LoadU(d, dy + i);
    const auto gw = w ? hn::Mul(g, hn::LoadU(d, w + i)) : g;
    const auto xh = hn::MulAdd(hn::LoadU(d, x + i), vr, vs);
    // rstd·(gw - mg - xh·mgx)
    hn::StoreU(hn::Mul(vr, hn::NegMulAdd(xh, vmgx, hn::Sub(gw, vmg))), d, dx + i);
  }
  for (; i < n; ++i) {
    const float gw = w ? dy[i] * w[i] : dy[i];
    const float xh = x[i] * rstd + shift;
    dx[i] = rstd * ((gw - mg) - xh * mgx);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace finch::ops::norm_kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::ops::norm_kernels {

HWY_EXPORT(SumImpl);
HWY_EXPORT(SumSqDevImpl);
HWY_EXPORT(ScaleShiftImpl);
HWY_EXPORT(SumDyDyxImpl);
HWY_EXPORT(Affine2Impl);
HWY_EXPORT(LnForwardRowImpl);
HWY_EXPORT(LnBackwardSumsImpl);
HWY_EXPORT(LnBackwardDxImpl);

double sum(const float* x, int64_t n) { return FINCH_DISPATCH(SumImpl)(x, n); }
double sum_sq_dev(const float* x, int64_t n, float mean) {
  return FINCH_DISPATCH(SumSqDevImpl)(x, n, mean);
}
void scale_shift(const float* x, float* y, int64_t n, float a, float b) {
  FINCH_DISPATCH(ScaleShiftImpl)(x, y, n, a, b);
}
void sum_dy_dyx(const float* dy, const float* x, int64_t n, float mean, double* sdy,
                double* sdyx) {
  FINCH_DISPATCH(SumDyDyxImpl)(dy, x, n, mean, sdy, sdyx);
}
void affine2(const float* dy, const float* x, float* dx, int64_t n, float a, float b, float c) {
  FINCH_DISPATCH(Affine2Impl)(dy, x, dx, n, a, b, c);
}
void ln_forward_row(const float* x, const float* w, const float* b, float* y, int64_t n,
                    float mean, float rstd) {
  FINCH_DISPATCH(LnForwardRowImpl)(x, w, b, y, n, mean, rstd);
}
void ln_backward_sums(const float* dy, const float* x, const float* w, int64_t n, float mean,
                      float rstd, double* sg, double* sgx, float* dw, float* db) {
  FINCH_DISPATCH(LnBackwardSumsImpl)(dy, x, w, n, mean, rstd, sg, sgx, dw, db);
}
void ln_backward_dx(const float* dy, const float* x, const float* w, float* dx, int64_t n,
                    float mean, float rstd, float mg, float mgx) {
  FINCH_DISPATCH(LnBackwardDxImpl)(dy, x, w, dx, n, mean, rstd, mg, mgx);
}

}  // namespace finch::ops::norm_kernels
#endif  // HWY_ONCE
