// Run-time CPU feature checks the kernels need beyond Highway's baseline target.
#pragma once

namespace finch {

// True when the CPU has the ARMv8.2 dot product instructions (SDOT/UDOT, "asimddp" in
// /proc/cpuinfo): a Raspberry Pi 5 (Cortex-A76) has them, a Pi 4 (Cortex-A72, ARMv8.0) does not.
// The int8 kernels pick their sdot micro-kernel only when this holds; Highway 1.0.3 has no target
// for it, so the check is ours. Always false off aarch64.
//
// FINCH_DISABLE_DOTPROD=1 in the environment (read once) or set_arm_dotprod_disabled(true) makes
// it false even on a capable CPU, so tests and benchmarks can exercise the ARMv8.0 path there.
bool cpu_has_arm_dotprod();

// Test hook: forces cpu_has_arm_dotprod() to false (true) or back to the hardware's answer
// (false). Not thread-safe against kernels running at the same time; call it between runs.
void set_arm_dotprod_disabled(bool disabled);

// True when the CPU has ARMv8.2 half-precision arithmetic, scalar and vector (FEAT_FP16: "fphp"
// and "asimdhp" in /proc/cpuinfo): a Raspberry Pi 5 (Cortex-A76) has it, a Pi 4 (Cortex-A72)
// does not. fp16 programs then run conv2d/linear natively in fp16 (kernels/f16_conv.h).
// Always false off aarch64.
//
// FINCH_DISABLE_FP16=1 in the environment (read once) or set_arm_fp16_disabled(true) makes it
// false even on a capable CPU (fp16 programs then compute in fp32, as on every other CPU).
bool cpu_has_arm_fp16();

// Test hook: forces cpu_has_arm_fp16() to false (true) or back to the hardware's answer (false).
// Not thread-safe against programs loading at the same time; call it between runs.
void set_arm_fp16_disabled(bool disabled);

}  // namespace finch
