// cpu_has_arm_dotprod / cpu_has_arm_fp16: the hardware's answer, and the switches that turn
// them off for tests. scripts/test-arm.sh runs this under qemu with FINCH_EXPECT_ARM_DOTPROD and
// FINCH_EXPECT_ARM_FP16 =0 (cortex-a72, a Pi 4) and =1 (cortex-a76, a Pi 5), and on the a76 once
// more with FINCH_DISABLE_DOTPROD=1 / FINCH_DISABLE_FP16=1; without those variables the
// expectation tests are skipped.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "framework/cpu_features.h"

using namespace finch;

namespace {

TEST(CpuFeatures, DotprodMatchesTheCpuTheScriptChose) {
  const char* expect = std::getenv("FINCH_EXPECT_ARM_DOTPROD");
  if (expect == nullptr) GTEST_SKIP() << "FINCH_EXPECT_ARM_DOTPROD not set";
  EXPECT_EQ(cpu_has_arm_dotprod(), std::string(expect) == "1");
}

TEST(CpuFeatures, NeverDotprodOffAarch64) {
#if !defined(__aarch64__)
  EXPECT_FALSE(cpu_has_arm_dotprod());
#else
  GTEST_SKIP() << "aarch64";
#endif
}

TEST(CpuFeatures, SetterDisablesAndRestores) {
  set_arm_dotprod_disabled(false);
  const bool hardware = cpu_has_arm_dotprod();
  set_arm_dotprod_disabled(true);
  EXPECT_FALSE(cpu_has_arm_dotprod());
  set_arm_dotprod_disabled(false);
  EXPECT_EQ(cpu_has_arm_dotprod(), hardware);
  // Leave the process as the environment asked (FINCH_DISABLE_DOTPROD).
  const char* env = std::getenv("FINCH_DISABLE_DOTPROD");
  set_arm_dotprod_disabled(env != nullptr && *env != '\0' && std::string(env) != "0");
}

TEST(CpuFeatures, Fp16MatchesTheCpuTheScriptChose) {
  const char* expect = std::getenv("FINCH_EXPECT_ARM_FP16");
  if (expect == nullptr) GTEST_SKIP() << "FINCH_EXPECT_ARM_FP16 not set";
  EXPECT_EQ(cpu_has_arm_fp16(), std::string(expect) == "1");
}

TEST(CpuFeatures, NeverFp16OffAarch64) {
#if !defined(__aarch64__)
  EXPECT_FALSE(cpu_has_arm_fp16());
#else
  GTEST_SKIP() << "aarch64";
#endif
}

TEST(CpuFeatures, Fp16SetterDisablesAndRestores) {
  set_arm_fp16_disabled(false);
  const bool hardware = cpu_has_arm_fp16(), dotprod = cpu_has_arm_dotprod();
  set_arm_fp16_disabled(true);
  EXPECT_FALSE(cpu_has_arm_fp16());
  EXPECT_EQ(cpu_has_arm_dotprod(), dotprod);  // the two switches are independent
  set_arm_fp16_disabled(false);
  EXPECT_EQ(cpu_has_arm_fp16(), hardware);
  // Leave the process as the environment asked (FINCH_DISABLE_FP16).
  const char* env = std::getenv("FINCH_DISABLE_FP16");
  set_arm_fp16_disabled(env != nullptr && *env != '\0' && std::string(env) != "0");
}

}  // namespace
