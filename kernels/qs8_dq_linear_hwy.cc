// Highway epilogue of QDynamicLinear (dq_detail::epilogue in qs8_dq_linear.h): vector FMA where
// it is native, the scalar std::fma where it is not, so every target rounds once.
#include <cmath>

#include "kernels/qs8_dq_linear.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/qs8_dq_linear_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

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

}  // namespace HWY_NAMESPACE
}  // namespace finch::quant::kernels::dq_detail
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch::quant::kernels::dq_detail {
HWY_EXPORT(Epilogue);

void epilogue(const int32_t* acc, const int32_t* wsum, int32_t zx, float s_x, const float* s_w, const float* bias,
              int64_t n, float* y) {
  FINCH_DISPATCH(Epilogue)(acc, wsum, zx, s_x, s_w, bias, n, y);
}
}  // namespace finch::quant::kernels::dq_detail
#endif
