// Whole fp32 programs on the packed-weight conv2d/linear (float_ops.cc → kernels/f32_conv.h):
// prepared for every non-depthwise conv and linear with f32 constant weights (a Winograd 3×3
// among them), not for the depthwise conv and not with reference_kernels; every value agrees
// with the ops/ path (reference_kernels) to float rounding at batch 1 and 3, on 1 and 2 threads.
// The program goes through the .finch file format, as a device loads it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
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

// conv 3×3 8→16 (relu; Winograd) → depthwise 3×3 stride 2 (relu6) → pointwise 16→24 (no bias)
// → relu → flatten → linear, all f32.
Graph fp32_net(std::mt19937& rng) {
  Graph g;
  g.meta["precision"] = "fp32";
  auto act = [&](const char* name, Shape s) { return g.add_value({name, std::move(s), DType::f32, std::nullopt, {}}); };
  auto weight = [&](const char* name, Shape s, float scale) {
    return g.add_value({name, s, DType::f32, std::nullopt, uniform(s, rng, -scale, scale)});
  };
  auto bias = [&](const char* name, int64_t n) { return g.add_value({name, {n}, DType::f32, std::nullopt, uniform({n}, rng, -0.1f, 0.1f)}); };
  const int32_t x = act("input", {1, 8, 12, 12});
  const int32_t c1 = act("conv1.out", {1, 16, 12, 12}), c2 = act("dw.out", {1, 16, 6, 6});
  const int32_t c3 = act("pw.out", {1, 24, 6, 6}), r = act("relu.out", {1, 24, 6, 6});
  const int32_t f = act("flat.out", {1, 24 * 36}), y = act("output", {1, 10});
  auto conv = [&](const char* name, int32_t in, int32_t w, int32_t b, int32_t out, int64_t stride, int64_t pad,
                  int64_t groups, const char* a) {
    Node n{"conv2d", name, {in, w, b}, {out}};
    n.attrs = {{"stride", {stride, stride}}, {"padding", {pad, pad}}, {"dilation", {1, 1}}, {"groups", groups}, {"act", a}};
    g.nodes.push_back(n);
  };
  conv("conv1", x, weight("conv1.weight", {16, 8, 3, 3}, 0.5f), bias("conv1.bias", 16), c1, 1, 1, 1, "relu");
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

Program load(const Graph& g, bool reference) {
  const std::vector<uint8_t> bytes = runtime::serialize_program(g);
  ProgramOptions o;
  o.reference_kernels = reference;
  return Program(runtime::parse_program(bytes.data(), bytes.size(), "fp32_net"), "fp32_net", o);
}

TEST(F32Program, PreparedKernelsForEveryConvAndLinear) {
  std::mt19937 rng(4);
  const Graph g = fp32_net(rng);
  EXPECT_EQ(load(g, false).optimized_nodes(), 4) << "conv1, the depthwise conv (F32DepthwiseConv2d), pw and fc";
  EXPECT_EQ(load(g, true).optimized_nodes(), 0);
}

TEST(F32Program, EveryValueMatchesTheOpsPathToRounding) {
  std::mt19937 rng(5);
  const Graph g = fp32_net(rng);
  Program fast = load(g, false), slow = load(g, true);
  for (int threads : {1, 2})
    for (int64_t n : {1, 3}) {
      set_num_threads(threads);
      const Tensor x = uniform({n, 8, 12, 12}, rng);
      const std::vector<Tensor> a = fast.run_all({x}), b = slow.run_all({x});
      for (size_t v = 0; v < a.size(); ++v) {
        if (!a[v].defined() || fast.graph().values[v].is_constant()) continue;
        const auto got = a[v].contiguous().to_vector<float>(), want = b[v].contiguous().to_vector<float>();
        ASSERT_EQ(got.size(), want.size());
        double range = 0, diff = 0;
        for (size_t i = 0; i < got.size(); ++i) {
          range = std::max(range, std::fabs(double(want[i])));
          diff = std::max(diff, std::fabs(double(got[i]) - double(want[i])));
        }
        // Two fp32 sums of at most 8·9 and 864 terms in different orders: a few ulps of the range.
        EXPECT_LE(diff, 1e-5 * range + 1e-7) << fast.graph().values[v].name << " batch " << n << ", " << threads
                                             << " threads";
      }
    }
  set_num_threads(1);
}

}  // namespace
}  // namespace finch::test
