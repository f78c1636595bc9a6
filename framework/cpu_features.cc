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

bool env_disables_dotprod() {
  const char* v = std::getenv("FINCH_DISABLE_DOTPROD");
  return v != nullptr && *v != '\0' && std::strcmp(v, "0") != 0;
}

std::atomic<bool>& disabled_flag() {
  static std::atomic<bool> flag{env_disables_dotprod()};
  return flag;
}

}  // namespace

bool cpu_has_arm_dotprod() {
  return !disabled_flag().load(std::memory_order_relaxed) && hardware_has_dotprod();
}

void set_arm_dotprod_disabled(bool disabled) {
  disabled_flag().store(disabled, std::memory_order_relaxed);
}

}  // namespace finch
