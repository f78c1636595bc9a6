// conv2d kernels (im2col+GEMM, 1×1 direct, Highway depthwise) vs the 7-loop reference, forward
// and backward, over a randomized sweep of the geometry; every Highway target for depthwise;
// and a golden check against PyTorch numbers (tests/golden/make_conv_goldens.py).
#include <gtest/gtest.h>

#include <cmath>

#include "tests/hwy_targets.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "hwy/highway.h"
#include "hwy/targets.h"
#include "ops/conv.h"
#include "tests/ops/test_util.h"

namespace finch::ops {
namespace {

using test::expect_close;

// A random tensor of `shape`; when `strided`, a non-contiguous view (every other column of a
// wider tensor) holding the values.
Tensor make(const Shape& shape, Generator& gen, DType dt, bool strided) {
  Tensor t = test::randn_maybe_strided(shape, gen, dt, strided);
  if (strided) {
    EXPECT_FALSE(t.is_contiguous());
  }
  return t;
}

struct Case {
  int64_t N, C, OC, H, W, KH, KW;
  Conv2dParams p;
  bool bias, strided;
  std::string str() const {
    return detail::cat("N=", N, " C=", C, " OC=", OC, " H=", H, " W=", W, " K=", KH, "x", KW, " s=",
                       p.sh, ",", p.sw, " p=", p.ph, ",", p.pw, " d=", p.dh, ",", p.dw, " g=",
                       p.groups, " bias=", bias, " strided=", strided);
  }
};

void check_case(const Case& c, DType dt, uint64_t seed) {
  Generator gen(seed);
  const Tensor x = make({c.N, c.C, c.H, c.W}, gen, dt, c.strided);
  const Tensor w = make({c.OC, c.C / c.p.groups, c.KH, c.KW}, gen, dt, c.strided);
  const Tensor b = c.bias ? randn({c.OC}, gen, dt) : Tensor();
  const Tensor y = conv2d(x, w, b, c.p);
  const Tensor yr = conv2d_reference(x, w, b, c.p);
  const double atol = dt == DType::f32 ? 1e-4 : 1e-10, rtol = dt == DType::f32 ? 1e-4 : 1e-10;
  expect_close(y, yr, atol, rtol, "forward " + c.str());
  const Tensor dy = make(y.shape(), gen, dt, c.strided);
  const Conv2dGrads g = conv2d_backward(dy, x, w, c.p, true, true, true);
  const Conv2dGrads gr = conv2d_backward_reference(dy, x, w, c.p);
  expect_close(g.dx, gr.dx, atol, rtol, "dx " + c.str());
  expect_close(g.dweight, gr.dweight, atol * 10, rtol, "dw " + c.str());
  expect_close(g.dbias, gr.dbias, atol * 10, rtol, "db " + c.str());
  // Partial requests compute the same numbers.
  const Conv2dGrads only_w = conv2d_backward(dy, x, w, c.p, false, true, false);
  EXPECT_FALSE(only_w.dx.defined());
  expect_close(only_w.dweight, g.dweight, 0, 0, "dw alone " + c.str());
}

// Draws a valid random geometry from the sweep space of the task.
Case random_case(Generator& gen, bool depthwise) {
  static const int64_t channels[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17};
  static const int64_t ks[] = {1, 3, 5};
  for (;;) {
    Case c;
    c.N = gen.below(2) ? 1 : 3;
    c.C = channels[gen.below(13)];
    c.KH = ks[gen.below(3)];
    c.KW = gen.below(4) == 0 ? ks[gen.below(3)] : c.KH;
    c.H = 1 + int64_t(gen.below(9));
    c.W = 1 + int64_t(gen.below(9));
    c.p.sh = 1 + int64_t(gen.below(3));
    c.p.sw = gen.below(3) == 0 ? 1 + int64_t(gen.below(3)) : c.p.sh;
    c.p.ph = int64_t(gen.below(3));
    c.p.pw = gen.below(3) == 0 ? int64_t(gen.below(3)) : c.p.ph;
    c.p.dh = 1 + int64_t(gen.below(2));
    c.p.dw = c.p.dh;
    const int64_t gsel = gen.below(3);
    c.p.groups = depthwise ? c.C : gsel == 0 ? 1 : gsel == 1 ? 2 : c.C;
    if (c.C % c.p.groups) continue;
    const int64_t mult = depthwise ? 1 + int64_t(gen.below(2)) : 0;
    c.OC = depthwise ? c.C * mult : c.p.groups * (1 + int64_t(gen.below(4)));
    c.bias = gen.below(2);
    c.strided = gen.below(4) == 0;
    if (conv_out_size(c.H, c.KH, c.p.sh, c.p.ph, c.p.dh) < 1 ||
        conv_out_size(c.W, c.KW, c.p.sw, c.p.pw, c.p.dw) < 1)
      continue;
    return c;
  }
}

TEST(Conv2d, RandomSweepF32) {
  Generator gen(1);
  for (int i = 0; i < 300; ++i) {
    const Case c = random_case(gen, false);
    SCOPED_TRACE(c.str());
    check_case(c, DType::f32, 100 + i);
    if (HasFatalFailure()) return;
  }
}

TEST(Conv2d, RandomSweepF64) {
  Generator gen(2);
  for (int i = 0; i < 80; ++i) {
    const Case c = random_case(gen, false);
    check_case(c, DType::f64, 500 + i);
    if (HasFatalFailure()) return;
  }
}

TEST(Conv2d, SystematicSmallSweep) {
  // Every kernel/stride/padding/dilation combination on one odd-sized input, groups 1, 2, C.
  uint64_t seed = 7;
  for (int64_t k : {1, 3, 5})
    for (int64_t s : {1, 2, 3})
      for (int64_t pad : {0, 1, 2})
        for (int64_t d : {1, 2})
          for (int64_t groups : {1, 2, 4}) {
            Case c{1, 4, 4, 9, 7, k, k, Conv2dParams{s, s, pad, pad, d, d, groups}, groups != 2, false};
            if (conv_out_size(c.H, k, s, pad, d) < 1 || conv_out_size(c.W, k, s, pad, d) < 1) continue;
            check_case(c, DType::f32, seed++);
            if (HasFatalFailure()) return;
          }
}

TEST(Conv2d, PointwiseAndLargerChannels) {
  check_case(Case{3, 17, 15, 6, 5, 1, 1, {}, true, false}, DType::f32, 11);
  check_case(Case{2, 16, 16, 9, 9, 3, 3, Conv2dParams{1, 1, 1, 1, 1, 1, 1}, true, true}, DType::f32, 12);
  check_case(Case{3, 15, 16, 8, 8, 3, 3, Conv2dParams{2, 2, 1, 1, 1, 1, 1}, false, false}, DType::f32, 13);
}

TEST(Conv2d, SeveralRowTilesPerImage) {
  // Kc = 40·9 = 360 makes the GEMM path split the 37 output rows into tiles with a partial tail.
  check_case(Case{2, 40, 6, 37, 37, 3, 3, Conv2dParams{1, 1, 1, 1, 1, 1, 1}, true, false}, DType::f32, 14);
  check_case(Case{1, 40, 4, 75, 70, 3, 3, Conv2dParams{2, 2, 1, 1, 1, 1, 2}, false, true}, DType::f32, 15);
  check_case(Case{1, 40, 4, 37, 39, 5, 3, Conv2dParams{1, 1, 2, 1, 2, 1, 1}, true, false}, DType::f64, 16);
}

TEST(Conv2d, WinogradPath) {
  // 3×3 stride-1 ungrouped F32 convs with >= 8 channels take Winograd F(2×2, 3×3) for the
  // forward and dX: odd and even output sizes (partial tiles), padding 0–2, several tile blocks,
  // rows long enough for full vectors plus tails — on every Highway target.
  for (uint32_t target : ::finch::test::hwy_targets_to_test()) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    uint64_t seed = 40;
    for (int64_t pad : {0, 1, 2})
      for (auto [h, w] : std::vector<std::pair<int64_t, int64_t>>{{3, 3}, {4, 7}, {9, 8}, {5, 1}, {3, 70}}) {
        if (h + 2 * pad < 3 || w + 2 * pad < 3) continue;
        const Case c{2, 8, 9, h, w, 3, 3, Conv2dParams{1, 1, pad, pad, 1, 1, 1}, pad != 1, pad == 2};
        ASSERT_TRUE(winograd_applies(c.C, c.OC, 3, 3, c.p));
        check_case(c, DType::f32, seed++);
        if (HasFatalFailure()) break;
      }
    check_case(Case{3, 16, 17, 37, 40, 3, 3, Conv2dParams{1, 1, 1, 1, 1, 1, 1}, true, false}, DType::f32, 50);
    check_case(Case{2, 9, 8, 17, 600, 3, 3, Conv2dParams{1, 1, 1, 0, 1, 1, 1}, true, false}, DType::f32, 51);
    // Small maps put several images into one tile block (and pad tile rows to whole vectors).
    check_case(Case{9, 16, 12, 7, 7, 3, 3, Conv2dParams{1, 1, 1, 1, 1, 1, 1}, true, true}, DType::f32, 53);
    check_case(Case{5, 8, 16, 14, 13, 3, 3, Conv2dParams{1, 1, 1, 1, 1, 1, 1}, false, false}, DType::f32, 54);
    if (HasFatalFailure()) break;
  }
  hwy::SetSupportedTargetsForTest(0);
  // Direct comparison with the im2col path at scale (F64 never takes Winograd).
  Generator gen(52);
  const Tensor x = randn({2, 32, 20, 20}, gen), w = randn({24, 32, 3, 3}, gen), b = randn({24}, gen);
  const Conv2dParams p{1, 1, 1, 1, 1, 1, 1};
  expect_close(conv2d(x, w, b, p), conv2d(x.to(DType::f64), w.to(DType::f64), b.to(DType::f64), p),
               2e-4, 2e-4, "winograd vs f64 im2col");
}

TEST(Conv2d, ThreadCountsAgreeAndAreDeterministic) {
  Generator gen(3);
  const Tensor x = randn({5, 6, 9, 9}, gen), w = randn({8, 6, 3, 3}, gen), dy = randn({5, 8, 9, 9}, gen);
  const Conv2dParams p{1, 1, 1, 1, 1, 1, 1};
  const int before = get_num_threads();
  set_num_threads(2);
  const Conv2dGrads a = conv2d_backward(dy, x, w, p, true, true, true);
  const Conv2dGrads a2 = conv2d_backward(dy, x, w, p, true, true, true);
  expect_close(a2.dweight, a.dweight, 0, 0, "same threads, same dW");
  set_num_threads(1);
  const Conv2dGrads b = conv2d_backward(dy, x, w, p, true, true, true);
  set_num_threads(before);
  expect_close(a.dweight, b.dweight, 1e-4, 1e-5, "dW across thread counts");
  expect_close(a.dx, b.dx, 0, 0, "dx across thread counts");
}

TEST(Conv2d, DepthwiseEveryHighwayTarget) {
  const auto targets = ::finch::test::hwy_targets_to_test();
  ASSERT_FALSE(targets.empty());
  for (uint32_t target : targets) {
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    std::printf("depthwise on Highway target %s\n", hwy::TargetName(target));
    Generator gen(4);
    for (int i = 0; i < 120; ++i) {
      const Case c = random_case(gen, true);
      ASSERT_TRUE(is_depthwise(c.C, c.OC, c.p.groups) || c.C == 1) << c.str();
      check_case(c, i % 4 == 0 ? DType::f64 : DType::f32, 900 + i);
      if (HasFatalFailure()) break;
    }
    // Wide planes: several full vectors per row plus a tail, 3×3 at stride 1 and 2.
    check_case(Case{2, 5, 5, 11, 37, 3, 3, Conv2dParams{1, 1, 1, 1, 1, 1, 5}, true, false}, DType::f32, 1);
    check_case(Case{2, 4, 8, 13, 41, 3, 3, Conv2dParams{2, 2, 1, 1, 1, 1, 4}, true, true}, DType::f32, 2);
    check_case(Case{1, 3, 3, 12, 33, 5, 5, Conv2dParams{1, 1, 2, 2, 2, 2, 3}, false, false}, DType::f32, 3);
    if (HasFatalFailure()) break;
  }
  hwy::SetSupportedTargetsForTest(0);
}

TEST(Conv2d, RejectsBadShapes) {
  const Tensor x = zeros({1, 4, 5, 5}), w = zeros({6, 2, 3, 3});
  EXPECT_THROW(conv2d(zeros({4, 5, 5}), w, Tensor(), {}), Error);
  EXPECT_THROW(conv2d(x, w, Tensor(), Conv2dParams{1, 1, 0, 0, 1, 1, 3}), Error);  // 4 % 3
  EXPECT_THROW(conv2d(x, w, Tensor(), {}), Error);  // weight wants 4 in-channels with groups 1
  EXPECT_THROW(conv2d(x, zeros({6, 4, 7, 7}), Tensor(), {}), Error);  // kernel bigger than input
  EXPECT_THROW(conv2d(x, zeros({6, 4, 3, 3}), zeros({5}), {}), Error);
  try {
    conv2d(zeros({4, 5, 5}), w, Tensor(), {});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv2d: expected a 4-D input"), std::string::npos) << e.what();
  }
}

TEST(Conv2d, GoldenVsPyTorch) {
  const SafetensorsFile g = test::load_golden("conv_goldens.safetensors");
  for (const auto& [name, t] : g.tensors) EXPECT_EQ(t.dtype(), DType::f64) << name;
  struct G {
    const char* name;
    Conv2dParams p;
  };
  for (const G& c : {G{"grouped", {2, 2, 1, 1, 2, 2, 2}}, G{"dw", {1, 1, 1, 1, 1, 1, 5}},
                     G{"dw2", {2, 2, 1, 1, 1, 1, 3}}, G{"wino", {1, 1, 1, 1, 1, 1, 1}}}) {
    const std::string n = c.name;
    ASSERT_TRUE(g.contains(n + ".x")) << n;
    for (DType dt : {DType::f64, DType::f32}) {
      const double tol = dt == DType::f64 ? 1e-10 : 1e-4;
      auto T = [&](const char* k) { return g.at(n + "." + k).to(dt); };
      expect_close(conv2d(T("x"), T("w"), T("b"), c.p), g.at(n + ".y"), tol, tol, n + " y");
      const Conv2dGrads r = conv2d_backward(T("dy"), T("x"), T("w"), c.p, true, true, true);
      expect_close(r.dx, g.at(n + ".dx"), tol, tol, n + " dx");
      expect_close(r.dweight, g.at(n + ".dw"), tol * 10, tol, n + " dw");
      expect_close(r.dbias, g.at(n + ".db"), tol * 10, tol, n + " db");
    }
  }
}

}  // namespace
}  // namespace finch::ops
