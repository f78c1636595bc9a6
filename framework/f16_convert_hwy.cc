// Highway kernels of f16_convert.h: full vectors, then the tail through the scalar conversions
// (which are the definition these kernels reproduce). Only targets with conversion instructions
// (F16C from AVX2 up, NEON) take the vector path: Highway 1.0.3's emulation on SSE4/SSSE3 turns
// infinities into 65536 and loses the sign of -0 (tests/framework/test_f16_convert.cc).
#include "framework/f16_convert.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "framework/f16_convert_hwy.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH

HWY_BEFORE_NAMESPACE();
namespace finch::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

#if HWY_TARGET == HWY_AVX2 || HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_NEON
constexpr bool kNative = true;
#else
constexpr bool kNative = false;
#endif

void F16ToF32(const f16* src, int64_t n, float* dst) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  const auto* s = reinterpret_cast<const hwy::float16_t*>(src);
  int64_t i = 0;
  if (kNative)
    for (; i + N <= n; i += N) hn::StoreU(hn::PromoteTo(df, hn::LoadU(dh, s + i)), df, dst + i);
  for (; i < n; ++i) dst[i] = f16_to_f32(src[i]);
}

void F32ToF16(const float* src, int64_t n, f16* dst) {
  const hn::ScalableTag<float> df;
  const hn::Rebind<hwy::float16_t, decltype(df)> dh;
  const int64_t N = int64_t(hn::Lanes(df));
  auto* d = reinterpret_cast<hwy::float16_t*>(dst);
  int64_t i = 0;
  if (kNative)
    for (; i + N <= n; i += N) hn::StoreU(hn::DemoteTo(dh, hn::LoadU(df, src + i)), dh, d + i);
  for (; i < n; ++i) dst[i] = f32_to_f16(src[i]);
}

}  // namespace finch::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace finch {
HWY_EXPORT(F16ToF32);
HWY_EXPORT(F32ToF16);
void f16_to_f32_array(const f16* src, int64_t n, float* dst) { FINCH_DISPATCH(F16ToF32)(src, n, dst); }
void f32_to_f16_array(const float* src, int64_t n, f16* dst) { FINCH_DISPATCH(F32ToF16)(src, n, dst); }
}  // namespace finch
#endif
