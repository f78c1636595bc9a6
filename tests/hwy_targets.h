// The Highway targets a kernel test walks (with hwy::SetSupportedTargetsForTest): every compiled
// target this CPU supports. On aarch64 only NEON is compiled and FINCH_DISPATCH always calls it
// (framework/simd_dispatch.h), but Highway 1.0.3 reports NEON as supported only when the CPU has
// AES: on a Raspberry Pi 4 the list would be empty and the per-target loops would test nothing.
// There the static target is the one the kernels run, so it is the one to test.
#pragma once

#include <cstdint>
#include <vector>

#include "hwy/highway.h"
#include "hwy/targets.h"

namespace finch::test {

inline std::vector<int64_t> hwy_targets_to_test() {
  std::vector<int64_t> t;
  for (auto target : hwy::SupportedAndGeneratedTargets()) t.push_back(int64_t(target));
#if HWY_ARCH_ARM_A64
  if (t.empty()) t.push_back(int64_t(HWY_STATIC_TARGET));
#endif
  return t;
}

}  // namespace finch::test
