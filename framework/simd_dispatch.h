// How finch calls its Highway kernels: FINCH_DISPATCH(Fn)(args...) instead of
// HWY_DYNAMIC_DISPATCH.
//
// Why not always dynamic dispatch: Highway 1.0.3 reports its NEON target as supported only when
// the CPU has AES, which a Raspberry Pi 4 (Cortex-A72 without the crypto extension) lacks, so
// which code runs there would hang on Highway's fallback rules. Every aarch64 CPU has ASIMD
// (NEON is mandatory in ARMv8-A) and no finch kernel uses Highway's AES ops, so on aarch64 only
// the NEON target is compiled and always called. qemu's cortex-a72 model reports AES and cannot
// show the difference, hence the design rather than a test. CPU features beyond the baseline
// (the dot product instructions) are checked by the kernels themselves (framework/cpu_features.h).
//
// On x86 the dynamic dispatch picks the best compiled target (SSE4, AVX2, AVX-512, AVX-512 with
// VNNI: HWY_WANT_AVX3_DL is defined for the whole build); tests walk every target with
// hwy::SetSupportedTargetsForTest, which FINCH_DISPATCH follows.
#pragma once

#include "hwy/highway.h"

#if HWY_ARCH_ARM_A64
// CMakeLists.txt defines HWY_COMPILE_ONLY_STATIC on aarch64, so HWY_EXPORT's table holds just the
// NEON function. Calling through the table (not HWY_STATIC_DISPATCH, which pastes `N_NEON::`
// before the name) accepts the same names as HWY_DYNAMIC_DISPATCH does on x86, qualified ones
// such as `wino::InputTransform` included.
#if (HWY_TARGETS & (HWY_TARGETS - 1)) != 0
#error "aarch64: define HWY_COMPILE_ONLY_STATIC (CMakeLists.txt does) so only NEON is compiled"
#endif
#define FINCH_DISPATCH(FUNC) (*(HWY_DISPATCH_TABLE(FUNC)[0]))
#else
#define FINCH_DISPATCH(FUNC) HWY_DYNAMIC_DISPATCH(FUNC)
#endif
