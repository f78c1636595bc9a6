// Batch norm and layer norm: fused kernels vs the plain-loop references on an edge sweep (every
// compiled Highway target), F32 and F64, strided inputs, errors, determinism, PyTorch goldens.
#include <gtest/gtest.h>

#include <cmath>
#include <sstream>

#include "framework/parallel.h"
#include "framework/random.h"
#include "ops/norm.h"
#include "tests/ops/test_util.h"

namespace finch {
namespace {

using test::for_each_target;

::testing::AssertionResult close(const Tensor& a, const Tensor& b, double atol, double rtol) {
  return test::all_close(a, b, atol, rtol);
}

Tensor rnd(const Shape& s, uint64_t seed, DType dt, double scale = 1.0, double shift = 0.0) {
  return test::random_tensor(s, seed, scale, shift, dt);
}

double tol(DType dt) { return dt == DType::f32 ? 2e-5 : 1e-12; }

void check_batch_norm(const Shape& shape, DType dt, bool training, bool affine, uint64_t seed) {
  std::ostringstream os;
  os << "shape " << shape_str(shape) << " " << dtype_name(dt) << (training ? " train" : " eval")
     << (affine ? " affine" : "");
  SCOPED_TRACE(os.str());
  const int64_t C = shape[1];
  const Tensor x = rnd(shape, seed, dt, 2.0, 3.0);  // a large mean exercises the centering
  const Tensor dy = rnd(shape, seed + 1, dt);
  const Tensor w = affine ? rnd({C}, seed + 2, dt) : Tensor();
  const Tensor b = affine ? rnd({C}, seed + 3, dt) : Tensor();
  Tensor rm = rnd({C}, seed + 4, dt, 0.1), rv = rnd({C}, seed + 5, dt, 0.1, 1.0);
  for (int64_t c = 0; c < C; ++c) rv.set({c}, std::fabs(rv.get({c})));
  Tensor rm_ref = rm.clone(), rv_ref = rv.clone();
  const double eps = 1e-3;
  const auto r = ops::batch_norm(x, rm, rv, w, b, training, 0.1, eps);
  const auto e = ops::batch_norm_reference(x, rm_ref, rv_ref, w, b, training, 0.1, eps);
  const double t = tol(dt);
  EXPECT_TRUE(close(r.y, e.y, t, 10 * t));
  EXPECT_TRUE(close(r.save_mean, e.save_mean, t, t));
  EXPECT_TRUE(close(r.save_invstd, e.save_invstd, t, 10 * t));
  EXPECT_TRUE(close(rm, rm_ref, t, t));
  EXPECT_TRUE(close(rv, rv_ref, t, 10 * t));
  const auto g = ops::batch_norm_backward(dy, x, w, r.save_mean, r.save_invstd, training);
  const auto ge = ops::batch_norm_backward_reference(dy, x, w, e.save_mean, e.save_invstd, training);
  const double M = double(x.numel() / C);
  EXPECT_TRUE(close(g.dx, ge.dx, 10 * t, 100 * t));
  EXPECT_TRUE(close(g.dweight, ge.dweight, 10 * t * M, 100 * t));
  EXPECT_TRUE(close(g.dbias, ge.dbias, 10 * t * M, 100 * t));
}

TEST(BatchNorm, SweepMatchesReferenceOnEveryTarget) {
  for_each_target([] {
    uint64_t seed = 1;
    for (DType dt : {DType::f32, DType::f64})
      for (int64_t N = 1; N <= 5; ++N)
        for (int64_t C : {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17}) {
          const bool aff = C % 2 == 1;
          check_batch_norm({N + 1, C}, dt, true, aff, seed++);
          for (int64_t L = 1; L <= 9; ++L)
            check_batch_norm({N, C, L}, dt, N * L > 1 && (L + C) % 2 == 0, !aff, seed++);
          for (auto hw : {std::pair<int64_t, int64_t>{1, 1}, {3, 3}, {2, 5}, {9, 9}, {4, 8}})
            check_batch_norm({N, C, hw.first, hw.second}, dt, N * hw.first * hw.second > 1, aff,
                             seed++);
          check_batch_norm({N, C, 3, 7}, dt, false, aff, seed++);
        }
  });
}

TEST(BatchNorm, LongChannelKeepsPrecision) {
  // 64 planes of 32x32 per channel with a mean far from zero: the statistics must not drift.
  check_batch_norm({64, 3, 32, 32}, DType::f32, true, true, 99);
}

TEST(BatchNorm, ManyChannelsShortPlanesSpanSeveralBlocks) {
  // More than one 64-channel block on the short-plane path (S < 8), train and eval.
  for (DType dt : {DType::f32, DType::f64}) {
    check_batch_norm({33, 130}, dt, true, true, 21);
    check_batch_norm({4, 70, 3}, dt, true, false, 22);
    check_batch_norm({4, 129, 2, 3}, dt, false, true, 23);
  }
}

TEST(BatchNorm, StridedInputAndNoRunningStats) {
  const Tensor base = rnd({3, 5, 4, 6}, 7, DType::f32);
  const Tensor x = base.permute({0, 3, 2, 1});  // [3, 6, 4, 5], non-contiguous
  ASSERT_FALSE(x.is_contiguous());
  const auto r = ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5);
  const auto e = ops::batch_norm_reference(x.contiguous(), Tensor(), Tensor(), Tensor(), Tensor(),
                                           true, 0.1, 1e-5);
  EXPECT_TRUE(close(r.y, e.y, 1e-5, 1e-4));
}

TEST(BatchNorm, Errors) {
  const Tensor x = rnd({1, 4}, 1, DType::f32);
  EXPECT_THROW(ops::batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-5), Error);
  const Tensor x2 = rnd({2, 4}, 1, DType::f32);
  EXPECT_THROW(ops::batch_norm(x2, Tensor(), Tensor(), ones({3}), Tensor(), true, 0.1, 1e-5), Error);
  EXPECT_THROW(ops::batch_norm(x2, Tensor(), Tensor(), Tensor(), Tensor(), false, 0.1, 1e-5), Error);
  EXPECT_THROW(ops::batch_norm(rnd({4}, 1, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(),
                               true, 0.1, 1e-5), Error);
}

TEST(BatchNorm, GoldenTrainStepMatchesPyTorch) {
  auto g = test::load_golden("batch_norm2d_train.safetensors");
  for (DType dt : {DType::f32, DType::f64}) {
    SCOPED_TRACE(dtype_name(dt));
    const double rt = dt == DType::f32 ? 1e-5 : 1e-10, at = dt == DType::f32 ? 1e-5 : 1e-10;
    auto in = [&](const char* k) { return g.at(k).to(dt).clone(); };
    Tensor rm = in("running_mean_in"), rv = in("running_var_in");
    const Tensor x = in("x"), w = in("weight"), b = in("bias"), dy = in("dy");
    const auto r = ops::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
    EXPECT_TRUE(close(r.y, g.at("y"), at, rt));
    EXPECT_TRUE(close(rm, g.at("running_mean_out"), at, rt));
    EXPECT_TRUE(close(rv, g.at("running_var_out"), at, rt));
    const auto d = ops::batch_norm_backward(dy, x, w, r.save_mean, r.save_invstd, true);
    EXPECT_TRUE(close(d.dx, g.at("dx"), at, rt));
    EXPECT_TRUE(close(d.dweight, g.at("dweight"), 10 * at, rt));
    EXPECT_TRUE(close(d.dbias, g.at("dbias"), 10 * at, rt));
    // Eval mode with the updated running statistics.
    const auto re = ops::batch_norm(x, rm, rv, w, b, false, 0.1, 1e-5);
    EXPECT_TRUE(close(re.y, g.at("y_eval"), at, rt));
    const auto de = ops::batch_norm_backward(dy, x, w, re.save_mean, re.save_invstd, false);
    EXPECT_TRUE(close(de.dx, g.at("dx_eval"), at, rt));
    EXPECT_TRUE(close(de.dweight, g.at("dweight_eval"), 10 * at, rt));
    EXPECT_TRUE(close(de.dbias, g.at("dbias_eval"), 10 * at, rt));
  }
}

void check_layer_norm(const Shape& shape, const Shape& ns, DType dt, bool affine, double eps,
                      uint64_t seed) {
  std::ostringstream os;
  os << "shape " << shape_str(shape) << " normalized " << shape_str(ns) << " "
     << dtype_name(dt) << (affine ? " affine" : "") << " eps " << eps;
  SCOPED_TRACE(os.str());
  const Tensor x = rnd(shape, seed, dt, 1.5, -2.0), dy = rnd(shape, seed + 1, dt);
  const Tensor w = affine ? rnd(ns, seed + 2, dt) : Tensor();
  const Tensor b = affine ? rnd(ns, seed + 3, dt) : Tensor();
  const auto r = ops::layer_norm(x, ns, w, b, eps);
  const auto e = ops::layer_norm_reference(x, ns, w, b, eps);
  const double t = tol(dt);
  EXPECT_TRUE(close(r.y, e.y, t, 10 * t));
  EXPECT_TRUE(close(r.mean, e.mean, t, t));
  EXPECT_TRUE(close(r.rstd, e.rstd, t, 10 * t));
  const auto g = ops::layer_norm_backward(dy, x, ns, w, r.mean, r.rstd);
  const auto ge = ops::layer_norm_backward_reference(dy, x, ns, w, e.mean, e.rstd);
  const double R = double(x.numel() / std::max<int64_t>(1, shape_numel(ns)));
  EXPECT_TRUE(close(g.dx, ge.dx, 10 * t, 100 * t));
  EXPECT_TRUE(close(g.dweight, ge.dweight, 10 * t * R, 100 * t));
  EXPECT_TRUE(close(g.dbias, ge.dbias, 10 * t * R, 100 * t));
}

TEST(LayerNorm, SweepMatchesReferenceOnEveryTarget) {
  for_each_target([] {
    uint64_t seed = 100;
    for (DType dt : {DType::f32, DType::f64})
      for (int64_t R : {1, 3, 17})
        for (int64_t D : {1, 2, 7, 8, 9, 15, 16, 17, 768})
          for (double eps : {1e-5, 1e-2}) {
            check_layer_norm({R, D}, {D}, dt, (D + R) % 2 == 0, eps, seed++);
            if (D <= 17) check_layer_norm({2, R, 3, D}, {3, D}, dt, D % 2 == 1, eps, seed++);
          }
  });
}

TEST(LayerNorm, StridedInputAndErrors) {
  const Tensor x = rnd({16, 9}, 3, DType::f32).t();  // [9, 16] non-contiguous
  const auto r = ops::layer_norm(x, {16}, Tensor(), Tensor(), 1e-5);
  const auto e = ops::layer_norm_reference(x.contiguous(), {16}, Tensor(), Tensor(), 1e-5);
  EXPECT_TRUE(close(r.y, e.y, 1e-5, 1e-4));
  EXPECT_THROW(ops::layer_norm(x, {9}, Tensor(), Tensor(), 1e-5), Error);
  EXPECT_THROW(ops::layer_norm(x, {16}, ones({15}), Tensor(), 1e-5), Error);
  EXPECT_THROW(ops::layer_norm(x, {}, Tensor(), Tensor(), 1e-5), Error);
}

TEST(LayerNorm, BackwardIsDeterministicAcrossThreadCounts) {
  const Tensor x = rnd({333, 96}, 5, DType::f32), dy = rnd({333, 96}, 6, DType::f32);
  const Tensor w = rnd({96}, 7, DType::f32);
  const int prev = get_num_threads();
  std::vector<std::vector<float>> dws;
  for (int th : {1, 2, 3}) {
    set_num_threads(th);
    const auto r = ops::layer_norm(x, {96}, w, Tensor(), 1e-5);
    dws.push_back(ops::layer_norm_backward(dy, x, {96}, w, r.mean, r.rstd).dweight.to_vector<float>());
  }
  set_num_threads(prev);
  EXPECT_EQ(dws[0], dws[1]);
  EXPECT_EQ(dws[0], dws[2]);
}

TEST(LayerNorm, GoldenMatchesPyTorch) {
  auto g = test::load_golden("layer_norm.safetensors");
  for (DType dt : {DType::f32, DType::f64})
    for (const char* tag : {"d1", "d2"}) {
      SCOPED_TRACE(std::string(dtype_name(dt)) + " " + tag);
      const double rt = dt == DType::f32 ? 1e-5 : 1e-10, at = dt == DType::f32 ? 1e-5 : 1e-10;
      auto in = [&](const char* k) { return g.at(std::string(tag) + "_" + k).to(dt); };
      auto ref = [&](const char* k) { return g.at(std::string(tag) + "_" + k); };
      const Shape ns = std::string(tag) == "d1" ? Shape{10} : Shape{6, 10};
      const auto r = ops::layer_norm(in("x"), ns, in("weight"), in("bias"), 1e-5);
      EXPECT_TRUE(close(r.y, ref("y"), at, rt));
      const auto d = ops::layer_norm_backward(in("dy"), in("x"), ns, in("weight"), r.mean, r.rstd);
      EXPECT_TRUE(close(d.dx, ref("dx"), at, rt));
      EXPECT_TRUE(close(d.dweight, ref("dweight"), 10 * at, rt));
      EXPECT_TRUE(close(d.dbias, ref("dbias"), 10 * at, rt));
    }
}

}  // namespace
}  // namespace finch
