// The runtime's prepared fp32 nodes against their plain fn, as bits, on every compiled Highway
// target: add with each fused activation (kernels/f32_eltwise.h; NaN, ±0, ±inf, lengths 1–100
// and past a vector multiple, alpha 1 and not), its fallbacks (broadcast, strided), global
// average pooling (planes 1–70, plane sizes 1–49), and the depthwise conv2d node
// (kernels/f32_dwconv.h) with its fused activation.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "kernels/f32_eltwise.h"
#include "ops/conv.h"
#include "runtime/op_table.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

using runtime::Graph;
using runtime::Node;

Tensor uniform(std::mt19937& rng, const Shape& s) {
  std::uniform_real_distribution<float> u(-3, 3);
  std::vector<float> v(size_t(shape_numel(s)));
  for (float& f : v) {
    f = u(rng);
    // The values activations treat specially.
    switch (rng() % 24) {
      case 0: f = 0.0f; break;
      case 1: f = -0.0f; break;
      case 2: f = std::numeric_limits<float>::quiet_NaN(); break;
      case 3: f = std::numeric_limits<float>::infinity(); break;
      case 4: f = 6.0f; break;
      default: break;
    }
  }
  return from_vector(v, s);
}

// Equal bits, or both NaN: where two NaNs meet in an add, x86 keeps the first operand's, and the
// compiler may order a commutative add either way, so a NaN's sign is not part of the contract.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const std::vector<float> x = a.to_vector<float>(), y = b.to_vector<float>();
  for (size_t i = 0; i < x.size(); ++i)
    if (std::memcmp(&x[i], &y[i], 4) != 0 && !(std::isnan(x[i]) && std::isnan(y[i]))) return false;
  return true;
}

// A one-node graph over f32 inputs of the given shapes (constants where `data` is given).
struct OneNode {
  Graph g;
  Node n;
  OneNode(const std::string& op, const std::vector<Shape>& shapes, const std::vector<Tensor>& data,
          nlohmann::json attrs) {
    n.op = op;
    n.name = "t";
    n.attrs = std::move(attrs);
    for (size_t i = 0; i < shapes.size(); ++i) {
      runtime::Value v;
      v.name = "v" + std::to_string(i);
      v.shape = shapes[i];
      if (i < data.size()) v.data = data[i];
      n.inputs.push_back(g.add_value(v));
    }
  }
  // fn and the prepared kernel on the same inputs.
  void check(const std::vector<Tensor>& in) const {
    const runtime::OpImpl* impl = runtime::find_op(n.op);
    ASSERT_NE(impl, nullptr);
    ASSERT_NE(impl->prepare, nullptr);
    const auto k = impl->prepare(n, g);
    ASSERT_NE(k, nullptr);
    const Tensor want = impl->fn(n, in, g)[0];
    const Tensor got = k->run(in)[0];
    EXPECT_TRUE(same_bits(got, want)) << n.op << " " << n.attrs.dump() << " " << shape_str(in[0].shape());
  }
};

TEST(F32Eltwise, AddWithActivationEqualsFn) {
  std::mt19937 rng(5);
  for_each_target([&](uint32_t) {
    for (int64_t len : {1, 3, 15, 16, 17, 33, 100})
      for (const char* act : {"none", "relu", "relu6"})
        for (double alpha : {1.0, 0.5}) {
          const Shape s{1, len, 1, 1};
          OneNode t("add", {s, s}, {}, {{"act", act}, {"alpha", alpha}});
          t.check({uniform(rng, s), uniform(rng, s)});
        }
    // Fallbacks: broadcasting, and a strided view.
    OneNode b("add", {{2, 3, 4, 5}, {1, 3, 1, 1}}, {}, {{"act", "relu"}});
    b.check({uniform(rng, {2, 3, 4, 5}), uniform(rng, {1, 3, 1, 1})});
    const Tensor wide = uniform(rng, {2, 3, 4, 10});
    OneNode v("add", {{2, 3, 4, 5}, {2, 3, 4, 5}}, {}, {{"act", "relu6"}});
    v.check({wide.slice(3, 0, 10, 2), uniform(rng, {2, 3, 4, 5})});
    // Long enough for several threads' chunks.
    OneNode l("add", {{1, 64, 56, 56}, {1, 64, 56, 56}}, {}, {{"act", "relu"}});
    l.check({uniform(rng, {1, 64, 56, 56}), uniform(rng, {1, 64, 56, 56})});
  });
}

TEST(F32Eltwise, GlobalAvgPoolEqualsFn) {
  std::mt19937 rng(6);
  for_each_target([&](uint32_t) {
    for (int64_t C : {1, 7, 16, 17, 70})
      for (int64_t H : {1, 4, 7})
        for (int64_t N : {1, 3}) {
          const Shape s{N, C, H, H + 1};
          OneNode t("adaptive_avg_pool2d", {s}, {}, {{"output_size", {1, 1}}});
          std::uniform_real_distribution<float> u(-3, 3);
          std::vector<float> v(size_t(shape_numel(s)));
          for (float& f : v) f = u(rng);
          t.check({from_vector(v, s)});
        }
  });
  // Other output sizes keep the plain fn.
  OneNode o("adaptive_avg_pool2d", {{1, 4, 8, 8}}, {}, {{"output_size", {2, 2}}});
  EXPECT_EQ(runtime::find_op("adaptive_avg_pool2d")->prepare(o.n, o.g), nullptr);
}

TEST(F32Eltwise, DepthwiseConvNodeEqualsFn) {
  std::mt19937 rng(8);
  for_each_target([&](uint32_t) {
    for (const char* act : {"none", "relu", "relu6"})
      for (int64_t HW : {5, 12, 30}) {
        std::uniform_real_distribution<float> u(-1, 1);
        std::vector<float> wv(24 * 9), bv(24);
        for (float& f : wv) f = u(rng);
        for (float& f : bv) f = u(rng);
        const Tensor w = from_vector(wv, {24, 1, 3, 3}), b = from_vector(bv, {24});
        OneNode t("conv2d", {{1, 24, HW, HW}, {24, 1, 3, 3}, {24}}, {Tensor(), w, b},
                  {{"stride", {2, 2}}, {"padding", {1, 1}}, {"dilation", {1, 1}}, {"groups", 24}, {"act", act}});
        t.check({uniform(rng, {1, 24, HW, HW}), w, b});
      }
  });
}

}  // namespace
}  // namespace finch::test
