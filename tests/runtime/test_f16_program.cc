// Whole fp16 programs on the native fp16 conv2d/linear (float_ops.cc → kernels/f16_conv.h):
// used exactly when the CPU has ARMv8.2 FP16 arithmetic (QEMU_CPU=cortex-a76 yes, cortex-a72
// no, x86 never) and not with FINCH_DISABLE_FP16 or reference_kernels; the weights then stay f16
// (no f32 copy); outputs agree with the fp32 compute within fp16 rounding. Wherever the native
// path is not taken the weights are widened at load and the nodes run on the packed fp32 kernels:
// bit-identical to the fp32 program with the same (f16-rounded) weights. The program goes through
// the .finch file format, as a device loads it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>

#include "framework/parallel.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"
#include "tests/runtime/f16_test_util.h"

namespace finch::test {
namespace {

using runtime::Graph;
using runtime::Node;
using runtime::Program;
using runtime::ProgramOptions;

// A small MobileNet-like net: conv 3×3 (relu) → depthwise 3×3 stride 2 (relu6) → pointwise
// (no bias) → relu → flatten → linear, weights f16 as an fp16 program stores them, biases f32.
Graph fp16_net(std::mt19937& rng) {
  Graph g;
  g.meta["precision"] = "fp16";
  auto act = [&](const char* name, Shape s) { return g.add_value({name, std::move(s), DType::f32, std::nullopt, {}}); };
  auto weight = [&](const char* name, Shape s, float scale) {
    return g.add_value({name, s, DType::f16, std::nullopt, uniform(s, rng, -scale, scale, DType::f16)});
  };
  auto bias = [&](const char* name, int64_t n) { return g.add_value({name, {n}, DType::f32, std::nullopt, uniform({n}, rng, -0.1f, 0.1f)}); };
  const int32_t x = act("input", {1, 3, 12, 12});
  const int32_t c1 = act("conv1.out", {1, 16, 12, 12}), c2 = act("dw.out", {1, 16, 6, 6});
  const int32_t c3 = act("pw.out", {1, 24, 6, 6}), r = act("relu.out", {1, 24, 6, 6});
  const int32_t f = act("flat.out", {1, 24 * 36}), y = act("output", {1, 10});
  auto conv = [&](const char* name, int32_t in, int32_t w, int32_t b, int32_t out, int64_t stride, int64_t pad,
                  int64_t groups, const char* a) {
    Node n{"conv2d", name, {in, w, b}, {out}};
    n.attrs = {{"stride", {stride, stride}}, {"padding", {pad, pad}}, {"dilation", {1, 1}}, {"groups", groups}, {"act", a}};
    g.nodes.push_back(n);
  };
  conv("conv1", x, weight("conv1.weight", {16, 3, 3, 3}, 0.5f), bias("conv1.bias", 16), c1, 1, 1, 1, "relu");
  conv("dw", c1, weight("dw.weight", {16, 1, 3, 3}, 0.5f), bias("dw.bias", 16), c2, 2, 1, 16, "relu6");
  conv("pw", c2, weight("pw.weight", {24, 16, 1, 1}, 0.4f), -1, c3, 1, 0, 1, "none");
  g.nodes.push_back(Node{"relu", "relu", {c3}, {r}});
  Node fl{"flatten", "flatten", {r}, {f}};
  fl.attrs = {{"start_dim", 1}, {"end_dim", -1}};
  g.nodes.push_back(fl);
  Node fc{"linear", "fc", {f, weight("fc.weight", {10, 24 * 36}, 0.1f), bias("fc.bias", 10)}, {y}};
  fc.attrs = {{"act", "none"}};
  g.nodes.push_back(fc);
  g.inputs = {x};
  g.outputs = {y};
  return g;
}

// The program as a device gets it: through the .finch bytes.
Graph loaded(const Graph& g) {
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  return runtime::parse_program(bytes.data(), bytes.size(), "fp16_net");
}

Program load(const Graph& g, bool reference = false) {
  ProgramOptions o;
  o.reference_kernels = reference;
  return Program(loaded(g), "fp16_net", o);
}

// The same net as an fp32 program: every f16 constant widened before it is stored.
Graph as_fp32(Graph g) {
  g.meta["precision"] = "fp32";
  for (auto& v : g.values)
    if (v.is_constant() && v.dtype == DType::f16) v.data = v.data.to(DType::f32), v.dtype = DType::f32;
  return g;
}

int64_t dtype_count(const Program& p, DType dt) {
  int64_t n = 0;
  for (const auto& v : p.graph().values) n += v.is_constant() && v.dtype == dt && v.data.dtype() == dt;
  return n;
}

TEST(F16Program, NativeKernelsRunExactlyWhenTheCpuHasFp16) {
  std::mt19937 rng(1);
  const Graph g = fp16_net(rng);
  restore_fp16();
  const bool native = cpu_has_arm_fp16();
#if !defined(__aarch64__)
  EXPECT_FALSE(native) << "no native fp16 arithmetic off aarch64";
#endif
  if (const char* expect = std::getenv("FINCH_EXPECT_ARM_FP16")) {
    EXPECT_EQ(native, *expect == '1');
  }
  const Program p = load(g);
  // conv1, dw, pw and fc, the four weighted nodes, run on prepared kernels either way: native
  // fp16 ones, or (weights widened at load) the packed fp32 ones.
  EXPECT_EQ(p.optimized_nodes(), 4);
  // The native kernels read the f16 weights as stored: no widened f32 copy stays resident.
  EXPECT_EQ(dtype_count(p, DType::f16), native ? 4 : 0);
  EXPECT_EQ(dtype_count(p, DType::f32), native ? 3 : 7);  // the biases (and the widened weights)
  EXPECT_EQ(load(g, true).optimized_nodes(), 0);
  EXPECT_EQ(dtype_count(load(g, true), DType::f16), 0);
  set_arm_fp16_disabled(true);
  const Program off = load(g);
  EXPECT_EQ(off.optimized_nodes(), 4);
  EXPECT_EQ(dtype_count(off, DType::f16), 0);
  restore_fp16();
}

// Native vs fp32 compute, batch 1 and 3: every conv/linear output within a few fp16 roundings of
// the fp32 program's (relative to the layer's largest value), and the final output likewise;
// identical bit for bit where the native path is not taken (x86, a Pi 4): the fp32 program with
// the same weights on the same packed kernels.
TEST(F16Program, MatchesTheFp32ComputeWithinFp16Rounding) {
  std::mt19937 rng(2);
  const Graph g = fp16_net(rng);
  restore_fp16();
  Program native = load(g), fp32 = load(as_fp32(g));
  double worst = 0;
  for (int64_t n : {1, 3}) {
    const Tensor x = uniform({n, 3, 12, 12}, rng);
    const std::vector<Tensor> a = native.run_all({x}), b = fp32.run_all({x});
    for (size_t v = 0; v < a.size(); ++v) {
      if (!a[v].defined() || native.graph().values[v].is_constant()) continue;
      const auto got = a[v].contiguous().to_vector<float>(), want = b[v].contiguous().to_vector<float>();
      ASSERT_EQ(got.size(), want.size());
      double max_ref = 0, max_diff = 0;
      int64_t differ = 0;
      for (size_t i = 0; i < got.size(); ++i) {
        max_ref = std::max(max_ref, std::fabs(double(want[i])));
        max_diff = std::max(max_diff, std::fabs(double(got[i]) - double(want[i])));
        differ += std::memcmp(&got[i], &want[i], 4) != 0;
      }
      const double rel = max_ref > 0 ? max_diff / max_ref : max_diff;
      worst = std::max(worst, rel);
      const std::string& name = native.graph().values[v].name;
      if (!cpu_has_arm_fp16()) {
        EXPECT_EQ(differ, 0) << name << ": without fp16 arithmetic the fp32 program's kernels must run";
      } else {
        // fp16 has 2^-11 ≈ 4.9e-4 relative precision; the reductions here are up to 384 long and
        // errors compound over four layers: 1% of the layer's range is a few dozen roundings.
        EXPECT_LE(rel, 1e-2) << name << " batch " << n;
      }
      std::printf("%-10s batch %lld: max |native - fp32| = %.3g (%.3g of max |fp32| %.3g)\n", name.c_str(),
                  static_cast<long long>(n), max_diff, rel, max_ref);
    }
  }
  std::printf("worst relative error (max |native - fp32| / max |fp32| per value): %.3g\n", worst);
}

TEST(F16Program, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(3);
  const Graph g = fp16_net(rng);
  restore_fp16();
  Program p = load(g);
  const Tensor x = uniform({2, 3, 12, 12}, rng);
  set_num_threads(1);
  const auto a = p.run(x).to_vector<float>();
  set_num_threads(2);
  const auto b = p.run(x).to_vector<float>();
  set_num_threads(1);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * 4), 0);
}

}  // namespace
}  // namespace finch::test
