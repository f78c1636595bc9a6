// FINCH_DISPATCH (framework/simd_dispatch.h): on aarch64 the NEON code runs whatever Highway's
// run-time detection says; elsewhere it follows Highway's dynamic dispatch and its test hook.
#include <cstdint>
#include <string>

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "tests/framework/test_simd_dispatch.cc"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "framework/simd_dispatch.h"

HWY_BEFORE_NAMESPACE();
namespace finch::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Which compiled copy of the code ran, and how many f32 lanes its vectors hold.
int64_t RanTarget() { return HWY_TARGET; }
int64_t FloatLanes() { return int64_t(hn::Lanes(hn::ScalableTag<float>())); }

}  // namespace finch::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
#include <gtest/gtest.h>

#include <iostream>

namespace finch {
HWY_EXPORT(RanTarget);
HWY_EXPORT(FloatLanes);

namespace {

std::string name(int64_t target) { return hwy::TargetName(target); }

TEST(SimdDispatch, ListsTheTargetsThisCpuRuns) {
  // Informational (the ARM script's log shows it per qemu CPU model).
  std::string list;
  for (int64_t t : hwy::SupportedAndGeneratedTargets()) list.append(" ").append(name(t));
  std::cout << "static target " << name(HWY_STATIC_TARGET) << "; supported and compiled:" << list
            << "\n";
}

#if HWY_ARCH_ARM_A64

// The default aarch64 flags must give Highway's NEON target as the static one: were it EMU128
// or SCALAR (a -march without SIMD, a Highway that marks NEON broken), every kernel would run
// one lane at a time on the Pi without failing any test.
TEST(SimdDispatch, StaticTargetIsNeonOnAarch64) {
  EXPECT_EQ(name(HWY_STATIC_TARGET), name(HWY_NEON));
  EXPECT_EQ(name(FINCH_DISPATCH(RanTarget)()), name(HWY_NEON));
  EXPECT_EQ(FINCH_DISPATCH(FloatLanes)(), 4);  // 128-bit vectors, not one lane
}

// Whatever Highway's run-time detection reports (a Pi 4 reports no NEON to Highway 1.0.3: it
// lacks AES; qemu's "max" reports SVE and SVE2, which a dynamic dispatch would prefer),
// FINCH_DISPATCH runs the NEON code the kernels were written and tested for.
TEST(SimdDispatch, NeonRunsWhateverHighwayDetects) {
  for (int64_t reported : {int64_t(HWY_EMU128), int64_t(HWY_NEON), int64_t(HWY_SVE),
                           int64_t(HWY_SVE2)}) {
    hwy::SetSupportedTargetsForTest(reported);
    EXPECT_EQ(name(FINCH_DISPATCH(RanTarget)()), name(HWY_NEON)) << "reported " << name(reported);
  }
  hwy::SetSupportedTargetsForTest(0);
}

#else

// Off ARM, FINCH_DISPATCH is Highway's dynamic dispatch: the per-target loops of the kernel
// tests (SetSupportedTargetsForTest) really run every compiled target.
TEST(SimdDispatch, FollowsTheTestTargetHookOffArm) {
  for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
    hwy::SetSupportedTargetsForTest(target);
    EXPECT_EQ(name(FINCH_DISPATCH(RanTarget)()), name(target));
  }
  hwy::SetSupportedTargetsForTest(0);
}

#endif

}  // namespace
}  // namespace finch
#endif  // HWY_ONCE
