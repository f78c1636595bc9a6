// Run-time CPU feature checks (see cpu_features.h).
#include "framework/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

namespace finch {
namespace {

// The hardware's answer, asked once: getauxval is cheap, but kernels call this per operator.
bool hardware_has_dotprod() {
#if defined(__aarch64__) && defined(__linux__)
  static const bool has = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return has;
#else
  return false;
#endif
}

// Both bits: FPHP (scalar fp16 arithmetic) and ASIMDHP (the vector forms the kernels use).
bool hardware_has_fp16() {
#if defined(__aarch64__) && defined(__linux__)
  static const bool has = (getauxval(AT_HWCAP) & (HWCAP_FPHP | HWCAP_ASIMDHP)) == (HWCAP_FPHP | HWCAP_ASIMDHP);
  return has;
#else
  return false;
#endif
}

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

std::atomic<bool>& disabled_flag() {
  static std::atomic<bool> flag{env_set("FINCH_DISABLE_DOTPROD")};
  return flag;
}

std::atomic<bool>& fp16_disabled_flag() {
  static std::atomic<bool> flag{env_set("FINCH_DISABLE_FP16")};
  return flag;
}

}  // namespace

bool cpu_has_arm_dotprod() {
  return !disabled_flag().load(std::memory_order_relaxed) && hardware_has_dotprod();
}

void set_arm_dotprod_disabled(bool disabled) {
  disabled_flag().store(disabled, std::memory_order_relaxed);
}

bool cpu_has_arm_fp16() {
  return !fp16_disabled_flag().load(std::memory_order_relaxed) && hardware_has_fp16();
}

void set_arm_fp16_disabled(bool disabled) {
  fp16_disabled_flag().store(disabled, std::memory_order_relaxed);
}

}  // namespace finch
