// Losses: fused cross entropy / BCE / MSE vs plain-loop references (every Highway target for the
// SIMD rows), ignore_index and label smoothing, spatial targets, errors, PyTorch goldens.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "framework/random.h"
#include "ops/loss.h"
#include "tests/ops/test_util.h"

namespace finch {
namespace {

using ops::Reduction;

::testing::AssertionResult close(const Tensor& a, const Tensor& b, double atol, double rtol) {
  if (a.shape() != b.shape())
    return ::testing::AssertionFailure() << "shape " << shape_str(a.shape()) << " vs "
                                         << shape_str(b.shape());
  const auto av = a.to_vector<double>(), bv = b.to_vector<double>();
  for (size_t i = 0; i < av.size(); ++i)
    if (!(std::isnan(av[i]) && std::isnan(bv[i])) && !(std::fabs(av[i] - bv[i]) <= atol + rtol * std::fabs(bv[i])))
      return ::testing::AssertionFailure() << "element " << i << ": " << av[i] << " vs ref "
                                           << bv[i];
  return ::testing::AssertionSuccess();
}

Tensor rnd(const Shape& s, uint64_t seed, DType dt, double scale = 1.0) {
  return test::random_tensor(s, seed, scale, 0.0, dt);
}

using test::for_each_target;

const char* red_name(Reduction r) {
  return r == Reduction::none ? "none" : r == Reduction::sum ? "sum" : "mean";
}

void check_ce(const Shape& shape, DType dt, Reduction red, int64_t ignore, double eps,
              uint64_t seed) {
  std::ostringstream os;
  os << "logits " << shape_str(shape) << " " << dtype_name(dt) << " " << red_name(red)
     << " ignore " << ignore << " smoothing " << eps;
  SCOPED_TRACE(os.str());
  const Tensor x = rnd(shape, seed, dt, 4.0);
  const int64_t C = shape.size() == 1 ? shape[0] : shape[1];
  Shape ts;
  if (shape.size() >= 2) {
    ts.push_back(shape[0]);
    for (size_t i = 2; i < shape.size(); ++i) ts.push_back(shape[i]);
  }
  Generator g(seed + 7);
  Tensor t = randint(0, C, ts, g);
  // Mark every third sample ignored (when ignore is not a valid class, it must still work).
  int64_t* pt = t.data<int64_t>();
  for (int64_t i = 0; i < t.numel(); i += 3)
    if (t.numel() > 1) pt[i] = ignore;
  const auto r = ops::cross_entropy(x, t, red, ignore, eps);
  const auto e = ops::cross_entropy_reference(x, t, red, ignore, eps);
  const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
  EXPECT_TRUE(close(r.loss, e.loss, tol, 10 * tol));
  EXPECT_EQ(r.count, e.count);
  const Tensor gl = red == Reduction::none ? rnd(r.loss.shape(), seed + 9, dt)
                                               : scalar_tensor(0.75, dt);
  const Tensor dx = ops::cross_entropy_backward(gl, x, t, r.lse, r.count, red, ignore, eps);
  const Tensor de = ops::cross_entropy_backward_reference(gl, x, t, red, ignore, eps);
  EXPECT_TRUE(close(dx, de, tol, 10 * tol));
}

TEST(CrossEntropy, SweepMatchesReferenceOnEveryTarget) {
  for_each_target([] {
    uint64_t seed = 1;
    for (DType dt : {DType::f32, DType::f64})
      for (auto red : {Reduction::none, Reduction::mean, Reduction::sum})
        for (int64_t N : {1, 2, 5})
          for (int64_t C : {1, 2, 3, 7, 8, 9, 15, 16, 17, 100}) {
            check_ce({N, C}, dt, red, -100, 0.0, seed++);
            check_ce({N, C}, dt, red, C > 1 ? 1 : -100, 0.1, seed++);
            check_ce({N, C, 3}, dt, red, -100, 0.1, seed++);
            check_ce({N, C, 2, 5}, dt, red, 0, 0.0, seed++);
          }
    check_ce({7}, DType::f32, Reduction::mean, -100, 0.2, 3);  // unbatched [C]
  });
}

TEST(CrossEntropy, ExtremeLogitsStayFinite) {
  Tensor x = from_vector<float>({1000.f, -1000.f, 0.f, -80.f, 90.f, 100.f}, {2, 3});
  Tensor t = from_vector<int64_t>({1, 0}, {2});
  const auto r = ops::cross_entropy(x, t, Reduction::none, -100, 0.1);
  const auto e = ops::cross_entropy_reference(x.to(DType::f64), t, Reduction::none, -100, 0.1);
  EXPECT_TRUE(close(r.loss, e.loss, 1e-3, 1e-6));
  const Tensor dx = ops::cross_entropy_backward(ones({2}), x, t, r.lse, r.count,
                                                Reduction::none, -100, 0.1);
  for (float v : dx.to_vector<float>()) EXPECT_TRUE(std::isfinite(v));
}

TEST(CrossEntropy, AllIgnoredMeanIsNaNAsTorch) {
  const auto r = ops::cross_entropy(rnd({3, 4}, 1, DType::f32), full({3}, -100, DType::i64),
                                    Reduction::mean, -100, 0.0);
  EXPECT_TRUE(std::isnan(r.loss.item()));
}

TEST(CrossEntropy, Errors) {
  const Tensor x = rnd({2, 4}, 1, DType::f32);
  try {
    ops::cross_entropy(x, from_vector<int64_t>({1, 4}, {2}), Reduction::mean, -100, 0.0);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target 4"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ops::cross_entropy(x, from_vector<int64_t>({-1, 0}, {2}), Reduction::mean,
                                  -100, 0.0), Error);
  EXPECT_THROW(ops::cross_entropy(x, from_vector<int64_t>({1, 0, 0}, {3}), Reduction::mean,
                                  -100, 0.0), Error);
  EXPECT_THROW(ops::cross_entropy(x, from_vector<int32_t>({1, 0}, {2}), Reduction::mean,
                                  -100, 0.0), Error);
}

TEST(CrossEntropy, GoldenMatchesPyTorch) {
  auto g = test::load_golden("cross_entropy.safetensors");
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const double tol = dt == DType::f32 ? 1e-5 : 1e-10;
    const Tensor x = g.at("nc_x").to(dt);
    const auto r = ops::cross_entropy(x, g.at("nc_target"), Reduction::mean, -100, 0.1);
    EXPECT_TRUE(close(r.loss, g.at("nc_loss"), tol, tol));
    EXPECT_TRUE(close(ops::cross_entropy_backward(scalar_tensor(1.0, dt), x, g.at("nc_target"),
                                                  r.lse, r.count, Reduction::mean, -100, 0.1),
                      g.at("nc_dx"), tol, tol));
    const Tensor x3 = g.at("ncd_x").to(dt);
    const auto r3 = ops::cross_entropy(x3, g.at("ncd_target"), Reduction::none, 1, 0.1);
    EXPECT_TRUE(close(r3.loss, g.at("ncd_loss"), tol, tol));
    EXPECT_TRUE(close(ops::cross_entropy_backward(g.at("ncd_dy").to(dt), x3, g.at("ncd_target"),
                                                  r3.lse, r3.count, Reduction::none, 1, 0.1),
                      g.at("ncd_dx"), tol, tol));
  }
}

TEST(BceWithLogits, MatchesTextbookReference) {
  for (DType dt : {DType::f32, DType::f64})
    for (auto red : {Reduction::none, Reduction::mean, Reduction::sum})
      for (const Shape& s : {Shape{1}, Shape{3, 5}, Shape{2, 3, 17}}) {
        SCOPED_TRACE(shape_str(s) + " " + dtype_name(dt) + " " + red_name(red));
        const Tensor x = rnd(s, 1, dt, 3.0);
        Generator gen(2);
        const Tensor t = rand(s, gen, dt);
        const Tensor pw = rnd({s.back()}, 3, dt).to(DType::f64);
        Tensor pwa = pw.clone();
        double* p = pwa.data<double>();
        for (int64_t i = 0; i < pwa.numel(); ++i) p[i] = std::fabs(p[i]) + 0.25;
        const Tensor pwd = pwa.to(dt);
        const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
        EXPECT_TRUE(close(ops::bce_with_logits(x, t, Tensor(), red),
                          ops::bce_with_logits_reference(x, t, Tensor(), red), tol, 10 * tol));
        EXPECT_TRUE(close(ops::bce_with_logits(x, t, pwd, red),
                          ops::bce_with_logits_reference(x, t, pwd, red), tol, 10 * tol));
      }
}

TEST(BceWithLogits, LargeLogitsStayFinite) {
  const Tensor x = from_vector<float>({-200.f, 200.f, 0.f}, {3});
  const Tensor t = from_vector<float>({1.f, 0.f, 0.5f}, {3});
  const auto l = ops::bce_with_logits(x, t, Tensor(), Reduction::none).to_vector<float>();
  EXPECT_NEAR(l[0], 200.f, 1e-3);
  EXPECT_NEAR(l[1], 200.f, 1e-3);
  EXPECT_NEAR(l[2], std::log(2.0), 1e-6);
  EXPECT_THROW(ops::bce_with_logits(x, t, ones({2}), Reduction::mean), Error);
  EXPECT_THROW(ops::bce_with_logits(x, ones({4}), Tensor(), Reduction::mean), Error);
}

TEST(BceWithLogits, GoldenMatchesPyTorch) {
  auto g = test::load_golden("bce_with_logits.safetensors");
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const double tol = dt == DType::f32 ? 1e-5 : 1e-10;
    const Tensor x = g.at("x").to(dt), t = g.at("target").to(dt), pw = g.at("pos_weight").to(dt);
    EXPECT_TRUE(close(ops::bce_with_logits(x, t, pw, Reduction::mean), g.at("loss"), tol, tol));
    const auto d = ops::bce_with_logits_backward(scalar_tensor(1.0, dt), x, t, pw,
                                                 Reduction::mean, true, true, false);
    EXPECT_TRUE(close(d.dx, g.at("dx"), tol, tol));
    EXPECT_TRUE(close(d.dtarget, g.at("dtarget"), tol, tol));
  }
}

TEST(MseLoss, MatchesReference) {
  for (DType dt : {DType::f32, DType::f64})
    for (auto red : {Reduction::none, Reduction::mean, Reduction::sum})
      for (const Shape& s : {Shape{}, Shape{1}, Shape{7, 9}, Shape{40000}}) {
        SCOPED_TRACE(shape_str(s) + " " + dtype_name(dt) + " " + red_name(red));
        const Tensor x = rnd(s, 1, dt), t = rnd(s, 2, dt);
        const double tol = dt == DType::f32 ? 1e-5 : 1e-12;
        EXPECT_TRUE(close(ops::mse_loss(x, t, red), ops::mse_loss_reference(x, t, red), tol, 10 * tol));
        // d/dx of mean((x-t)^2) = 2(x-t)/n.
        const Tensor gl = red == Reduction::none ? ones(s, dt) : scalar_tensor(1.0, dt);
        const auto dx = ops::mse_loss_backward(gl, x, t, red).to_vector<double>();
        const auto xv = x.to_vector<double>(), tv = t.to_vector<double>();
        const double k = red == Reduction::mean ? 2.0 / double(xv.size()) : 2.0;
        for (size_t i = 0; i < xv.size(); ++i)
          ASSERT_NEAR(dx[i], k * (xv[i] - tv[i]), tol * (1 + std::fabs(dx[i])));
      }
  EXPECT_THROW(ops::mse_loss(ones({2}), ones({3}), Reduction::mean), Error);
}

}  // namespace
}  // namespace finch
