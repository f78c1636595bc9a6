// F32DepthwiseConv2d (kernels/f32_dwconv.h) against ops::conv2d_reference (plain loops in double)
// on every compiled Highway target and with 1 and 2 threads: randomized geometries (channels
// 1–70, kernels 1/3/5/7 and non-square, strides 1–3, padding 0–3, dilation 1–2, planes 1–40,
// batch 1 and 3, channel multiplier 1–2, every activation, with and without bias and residual,
// strided inputs), fixed MobileNet shapes, f16 weights, and the operator's error sentences.
// Tolerance: each output within 1e-5·(Σ|w·x| + |b| + |residual|) + 1e-6 of the exact sum.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <sstream>

#include "framework/error.h"
#include "framework/parallel.h"
#include "hwy/targets.h"
#include "kernels/f32_dwconv.h"
#include "kernels/fused_act.h"
#include "ops/activation.h"
#include "ops/conv.h"
#include "tests/runtime/qs8_test_util.h"

namespace finch::test {
namespace {

using quant::kernels::F32Act;
using quant::kernels::F32DepthwiseConv2d;

struct Case {
  int64_t N = 1, C = 1, M = 1, H = 1, W = 1, KH = 1, KW = 1;
  ops::Conv2dParams p;
  F32Act act = F32Act::none;
  bool bias = false, residual = false, strided = false;

  std::string str() const {
    std::ostringstream s;
    s << "N" << N << " C" << C << " M" << M << " " << H << "x" << W << " k" << KH << "x" << KW << " s" << p.sh
      << "," << p.sw << " p" << p.ph << "," << p.pw << " d" << p.dh << "," << p.dw << " act" << int(act) << " bias"
      << bias << " residual" << residual << " strided" << strided;
    return s.str();
  }
  int64_t OH() const { return ops::conv_out_size(H, KH, p.sh, p.ph, p.dh); }
  int64_t OW() const { return ops::conv_out_size(W, KW, p.sw, p.pw, p.dw); }
};

Tensor uniform(std::mt19937& rng, const Shape& s, float lo, float hi) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(size_t(shape_numel(s)));
  for (float& f : v) f = u(rng);
  return from_vector(v, s);
}

Tensor abs_of(const Tensor& t) {
  std::vector<double> v = t.to_vector<double>();
  for (double& f : v) f = std::fabs(f);
  return from_vector(v, t.shape());
}

double act_of(double v, F32Act a) {
  if (a == F32Act::relu) return std::max(v, 0.0);
  if (a == F32Act::relu6) return std::min(std::max(v, 0.0), 6.0);
  return v;
}

// Runs one case on every target with 1 and 2 threads against the double reference.
void check_case(std::mt19937& rng, const Case& c) {
  SCOPED_TRACE(c.str());
  const int64_t OC = c.C * c.M;
  Tensor x = uniform(rng, {c.N, c.C, c.H, c.W}, -2, 2);
  if (c.strided) {
    // A view: every other column of a wider tensor.
    x = uniform(rng, {c.N, c.C, c.H, 2 * c.W}, -2, 2).slice(3, 0, 2 * c.W, 2);
    ASSERT_FALSE(x.is_contiguous());
  }
  const Tensor w = uniform(rng, {OC, 1, c.KH, c.KW}, -1, 1);
  const Tensor b = c.bias ? uniform(rng, {OC}, -1, 1) : Tensor();
  const Shape ys{c.N, OC, c.OH(), c.OW()};
  const Tensor r = c.residual ? uniform(rng, ys, -3, 3) : Tensor();
  ops::Conv2dParams p = c.p;
  p.groups = c.C;
  const Tensor exact = ops::conv2d_reference(x.to(DType::f64), w.to(DType::f64),
                                             b.defined() ? b.to(DType::f64) : Tensor(), p);
  const Tensor mag = ops::conv2d_reference(abs_of(x), abs_of(w), b.defined() ? abs_of(b) : Tensor(), p);
  std::vector<double> want = exact.to_vector<double>(), tol = mag.to_vector<double>();
  const std::vector<double> rv = r.defined() ? r.to_vector<double>() : std::vector<double>(want.size(), 0.0);
  for (size_t i = 0; i < want.size(); ++i) {
    want[i] = act_of(want[i] + rv[i], c.act);
    tol[i] = 1e-5 * (tol[i] + std::fabs(rv[i])) + 1e-6;
  }
  const F32DepthwiseConv2d k(w, b, p, c.act);
  for_each_target([&](uint32_t) {
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      const Tensor y = k.run(x, r);
      ASSERT_EQ(y.shape(), ys);
      const std::vector<float> got = y.to_vector<float>();
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], tol[i]) << "output " << i << " with " << threads << " threads";
    }
  });
  set_num_threads(1);
}

TEST(F32DwConv, RandomGeometries) {
  std::mt19937 rng(22);
  const int64_t kernels[] = {1, 3, 5, 7};
  const F32Act acts[] = {F32Act::none, F32Act::relu, F32Act::relu6};
  int run = 0;
  for (int i = 0; i < 260; ++i) {
    Case c;
    c.N = rng() % 4 == 0 ? 3 : 1;
    c.C = 1 + int64_t(rng() % 70);
    c.M = rng() % 6 == 0 ? 2 : 1;
    c.H = 1 + int64_t(rng() % 40);
    c.W = rng() % 3 == 0 ? c.H : 1 + int64_t(rng() % 40);
    c.KH = kernels[rng() % 4];
    c.KW = rng() % 5 == 0 ? kernels[rng() % 4] : c.KH;
    c.p.sh = 1 + int64_t(rng() % 3);
    c.p.sw = rng() % 4 == 0 ? 1 + int64_t(rng() % 3) : c.p.sh;
    c.p.ph = int64_t(rng() % 4);
    c.p.pw = rng() % 4 == 0 ? int64_t(rng() % 4) : c.p.ph;
    c.p.dh = 1 + int64_t(rng() % 4 == 0);
    c.p.dw = rng() % 4 == 0 ? 1 + int64_t(rng() % 2) : c.p.dh;
    c.act = acts[rng() % 3];
    c.bias = rng() % 3 != 0;
    c.residual = rng() % 4 == 0;
    c.strided = rng() % 8 == 0;
    if (c.OH() < 1 || c.OW() < 1) continue;
    // Keep the double reference cheap: big planes only with few channels.
    if (c.N * c.C * c.M * c.H * c.W * c.KH * c.KW > 4'000'000) continue;
    check_case(rng, c);
    if (::testing::Test::HasFatalFailure()) return;
    ++run;
  }
  EXPECT_GT(run, 150);
}

// The depthwise layers of MobileNetV2 (28×28 input) and MobileNet v1, and planes whose widths
// sit at the vector-width edges, through both the row and the flat walk.
TEST(F32DwConv, NetworkShapesAndEdges) {
  std::mt19937 rng(7);
  struct S {
    int64_t C, H, s, p;
  };
  const S shapes[] = {{32, 28, 1, 1}, {144, 28, 2, 1}, {192, 14, 2, 1}, {384, 7, 1, 1}, {960, 7, 1, 1},
                      {16, 56, 1, 1}, {64, 56, 2, 1},  {256, 14, 1, 1}, {512, 7, 2, 1}, {8, 15, 1, 1},
                      {8, 16, 1, 1},  {8, 17, 1, 1},   {8, 31, 2, 1},   {8, 32, 2, 1},  {8, 33, 2, 1},
                      {5, 65, 2, 0},  {3, 64, 1, 2},   {2, 112, 2, 1}, {3, 113, 2, 1}, {3, 40, 2, 2}, {2, 33, 2, 0},
                      {3, 2, 2, 1},   {3, 3, 2, 1}};
  for (const S& s : shapes)
    for (F32Act act : {F32Act::none, F32Act::relu6}) {
      Case c;
      c.C = s.C, c.H = c.W = s.H, c.KH = c.KW = 3;
      c.p.sh = c.p.sw = s.s, c.p.ph = c.p.pw = s.p;
      c.act = act, c.bias = true, c.residual = act == F32Act::none && s.s == 1;
      check_case(rng, c);
      if (::testing::Test::HasFatalFailure()) return;
    }
}

// The channels-last kernel's largest plane and one pixel past it (f32_dwconv_cl_max_plane():
// 1024 outputs on AVX-512, 64 where it gathers), with a partial last block of channels, the
// residual and relu6: both sides of the switch on every target. Also planes of 16·k ± 1 outputs,
// the register transposes' whole and partial groups.
TEST(F32DwConv, ChannelsLastAtItsLargestPlane) {
  std::mt19937 rng(31);
  struct S {
    int64_t H, W, s;
  };
  const S shapes[] = {{32, 32, 1}, {32, 33, 1}, {8, 8, 1}, {8, 9, 1}, {63, 64, 2}, {5, 3, 1}, {4, 4, 1}, {9, 7, 2}};
  for (const S& sh : shapes) {
    Case c;
    c.C = 17, c.H = sh.H, c.W = sh.W, c.KH = c.KW = 3;
    c.p.sh = c.p.sw = sh.s, c.p.ph = c.p.pw = 1;
    c.act = F32Act::relu6, c.bias = true, c.residual = true;
    check_case(rng, c);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

// f16 weights (an fp16 program on a CPU without fp16 arithmetic) are widened once: the result
// equals the kernel built from the same weights in f32, bit for bit.
TEST(F32DwConv, F16WeightsEqualTheirF32Widening) {
  std::mt19937 rng(3);
  const Tensor w16 = uniform(rng, {24, 1, 3, 3}, -1, 1).to(DType::f16);
  const Tensor b16 = uniform(rng, {24}, -1, 1).to(DType::f16);
  const Tensor x = uniform(rng, {2, 24, 13, 13}, -2, 2);
  ops::Conv2dParams p;
  p.groups = 24, p.sh = p.sw = 2, p.ph = p.pw = 1;
  const Tensor a = F32DepthwiseConv2d(w16, b16, p, F32Act::relu).run(x);
  const Tensor b = F32DepthwiseConv2d(w16.to(DType::f32), b16.to(DType::f32), p, F32Act::relu).run(x);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
}

// Same arithmetic as ops::conv2d's depthwise path (bias, then the taps by FMA in (kh, kw)
// order) and the same activation formulas as ops::relu / ops::relu6, compared as bits: the
// runtime's predictions do not move when it switches kernels. Planes walked by rows (21×21),
// flat (7×7, without the channels-last path: 7 channels) and channels-last (5×5, 40 channels);
// the row walk and the stride-2 walk read in place (f32_dwconv3x3s2_direct: blocks of 4 output
// rows and 1, 2 or 3 left over, both edges of a row, odd widths) on planes past the
// channels-last limit or with fewer channels than it takes.
TEST(F32DwConv, MatchesOpsConv2dPlusActivationBitForBit) {
  std::mt19937 rng(11);
  struct S {
    int64_t C, HW, s;
  };
  for (const S& sh : {S{40, 21, 1}, S{40, 21, 2}, S{7, 7, 1}, S{40, 5, 1}, S{40, 9, 2}, S{8, 57, 1}, S{3, 34, 1},
                      S{3, 35, 1}, S{8, 58, 2}, S{3, 60, 2}, S{3, 13, 2}, S{2, 112, 1},
                      S{3, 113, 2}, S{2, 3, 2}})
    for (F32Act act : {F32Act::none, F32Act::relu, F32Act::relu6}) {
      SCOPED_TRACE(testing::Message() << "C" << sh.C << " " << sh.HW << " s" << sh.s << " act" << int(act));
      Tensor w = uniform(rng, {sh.C, 1, 3, 3}, -1, 1), bb = uniform(rng, {sh.C}, -1, 1);
      Tensor x = uniform(rng, {1, sh.C, sh.HW, sh.HW}, -4, 4);
      // Channel 0: a zero plane, negative weights and a −0 bias sum to −0 everywhere, which relu
      // keeps (ops::relu) and a max(v, 0) would turn into +0.
      for (int64_t i = 0; i < sh.HW * sh.HW; ++i) x.data<float>()[i] = 0.0f;
      for (int64_t t = 0; t < 9; ++t) w.data<float>()[t] = -0.5f;
      bb.data<float>()[0] = -0.0f;
      ops::Conv2dParams p;
      p.groups = sh.C, p.sh = p.sw = sh.s, p.ph = p.pw = 1;
      // Per target: without FMA (SSE4) both round the product and the sum separately.
      for_each_target([&](uint32_t) {
        Tensor want = ops::conv2d(x, w, bb, p);
        if (act == F32Act::relu) want = ops::relu(want);
        if (act == F32Act::relu6) want = ops::relu6(want);
        const Tensor got = F32DepthwiseConv2d(w, bb, p, act).run(x);
        ASSERT_EQ(got.numel(), want.numel());
        EXPECT_EQ(0, std::memcmp(got.data<float>(), want.data<float>(), sizeof(float) * size_t(got.numel())));
      });
    }
}

void expect_error(const std::function<void()>& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected an error containing '" << part << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(F32DwConv, RejectsBadArguments) {
  ops::Conv2dParams p;
  p.groups = 4;
  const Tensor w = zeros({4, 1, 3, 3}, DType::f32);
  expect_error([&] { F32DepthwiseConv2d(zeros({4, 2, 3, 3}, DType::f32), Tensor(), p, F32Act::none); },
               "groups == C");
  expect_error([&] { F32DepthwiseConv2d(zeros({4, 1, 3, 3}, DType::i8), Tensor(), p, F32Act::none); },
               "expected the weight as F32 or F16");
  expect_error([&] { F32DepthwiseConv2d(w, zeros({5}, DType::f32), p, F32Act::none); }, "expected the bias");
  const F32DepthwiseConv2d k(w, Tensor(), p, F32Act::none);
  expect_error([&] { k.run(zeros({1, 3, 8, 8}, DType::f32)); }, "expected the input as F32 [N, 4, H, W]");
  expect_error([&] { k.run(zeros({1, 4, 2, 2}, DType::f32)); }, "at least as large as the dilated kernel");
  expect_error([&] { k.run(zeros({1, 4, 8, 8}, DType::f32), zeros({1, 4, 8, 8}, DType::f32)); },
               "expected the residual as F32 [1, 4, 6, 6]");
  expect_error([] { quant::kernels::fused_act_from_name("gelu"); }, "none, relu or relu6");
}

}  // namespace
}  // namespace finch::test
