// The runtime's timing half of bench/emit_c_check.cc and emit_c_check_series.cc: what the
// emitted C is compared against.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "runtime/executor.h"

namespace finch::bench {

inline double process_cpu_ms() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) * 1e3 + double(t.tv_nsec) / 1e6;
}

// `runs` runs of `inputs` through p, wall and processor time (on a busy machine a run waits for a
// core, and wall time counts it), then up to 20 runs of the runtime's scalar reference kernels
// (the arithmetic the emitted C copies), for scale. `sample` names the input ("image 0").
inline void print_runtime_times(runtime::Program& p, const std::vector<Tensor>& inputs, int64_t runs,
                                const std::string& what, const char* sample) {
  std::vector<double> ms, cpu;
  for (int64_t r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = process_cpu_ms();
    p.run(inputs);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    cpu.push_back(process_cpu_ms() - c0);
  }
  std::sort(ms.begin(), ms.end());
  std::sort(cpu.begin(), cpu.end());
  std::printf("runtime: %lld runs of %s at 1 thread: median %.4f ms, min %.4f ms; cpu time median %.4f ms\n",
              static_cast<long long>(runs), sample, ms[ms.size() / 2], ms[0], cpu[cpu.size() / 2]);
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(p.graph(), what, ro);
  std::vector<double> rcpu;
  for (int64_t r = 0; r < std::min<int64_t>(runs, 20); ++r) {
    const double c0 = process_cpu_ms();
    ref.run(inputs);
    rcpu.push_back(process_cpu_ms() - c0);
  }
  std::sort(rcpu.begin(), rcpu.end());
  std::printf("runtime reference kernels: %zu runs: cpu time median %.4f ms\n", rcpu.size(), rcpu[rcpu.size() / 2]);
}

}  // namespace finch::bench
