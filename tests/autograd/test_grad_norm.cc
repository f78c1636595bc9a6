// Gradchecks for batch_norm (train/eval, with/without affine), layer_norm (1- and 2-dim
// normalized shapes), embedding (repeated indices, padding_idx) and dropout (fixed generator).
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/grad_mode.h"
#include "tests/autograd/gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;

Tensor buffer(const Shape& s, double v) { return full(s, v, DType::f64); }

void bn_case(const Shape& shape, bool training, bool affine, uint64_t seed) {
  SCOPED_TRACE(shape_str(shape) + (training ? " train" : " eval") + (affine ? " affine" : ""));
  const int64_t C = shape[1];
  Tensor rm = buffer({C}, 0.2), rv = buffer({C}, 1.5);
  std::vector<Tensor> in{leaf(shape, seed, 2.0)};
  if (affine) {
    in.push_back(leaf({C}, seed + 1));
    in.push_back(leaf({C}, seed + 2));
  }
  check_grad("batch_norm",
             [&](const std::vector<Tensor>& v) {
               return std::vector<Tensor>{batch_norm(v[0], rm, rv, affine ? v[1] : Tensor(),
                                                     affine ? v[2] : Tensor(), training, 0.1,
                                                     1e-5)};
             },
             in);
}

GRADCHECK_TEST(batch_norm, TrainAndEvalWithAndWithoutAffine) {
  uint64_t seed = 1;
  for (bool training : {true, false})
    for (bool affine : {true, false}) {
      bn_case({4, 3}, training, affine, seed += 3);
      bn_case({2, 3, 5}, training, affine, seed += 3);
      bn_case({2, 2, 3, 3}, training, affine, seed += 3);
    }
}

GRADCHECK_TEST(batch_norm, RunningStatsAreBuffersUpdatedInPlace) {
  Tensor rm = buffer({2}, 0.0), rv = buffer({2}, 1.0);
  Tensor x = leaf({3, 2, 4}, 5);
  Tensor y = batch_norm(x, rm, rv, Tensor(), Tensor(), true, 0.5, 1e-5);
  EXPECT_FALSE(rm.requires_grad());
  EXPECT_NE(rm.get({0}), 0.0);  // moved halfway to the batch mean
  // Gradient flows to x only.
  check_grad("batch_norm",
             [&](const std::vector<Tensor>& v) {
               return std::vector<Tensor>{batch_norm(v[0], rm, rv, Tensor(), Tensor(), true)};
             },
             {x});
}

GRADCHECK_TEST(layer_norm, OneAndTwoNormalizedDimsWithAndWithoutAffine) {
  uint64_t seed = 50;
  for (const auto& [shape, ns] : std::vector<std::pair<Shape, Shape>>{
           {{3, 5}, {5}}, {{2, 3, 4}, {4}}, {{2, 3, 4}, {3, 4}}, {{4, 1}, {1}}, {{2, 9}, {9}}})
    for (bool affine : {true, false}) {
      SCOPED_TRACE(shape_str(shape) + " over " + shape_str(ns) + (affine ? " affine" : ""));
      std::vector<Tensor> in{leaf(shape, seed++, 1.5)};
      if (affine) {
        in.push_back(leaf(ns, seed++));
        in.push_back(leaf(ns, seed++));
      }
      check_grad("layer_norm",
                 [&](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{layer_norm(v[0], ns, affine ? v[1] : Tensor(),
                                                         affine ? v[2] : Tensor(), 1e-5)};
                 },
                 in);
    }
}

GRADCHECK_TEST(embedding, RepeatedIndicesI64AndI32) {
  for (DType idt : {DType::i64, DType::i32}) {
    const Tensor idx = from_vector<int64_t>({1, 3, 1, 0, 3, 3}, {2, 3}).to(idt);
    // padding_idx 2 is not among the indices: every used row is checked numerically.
    for (int64_t pad : {int64_t(-1), int64_t(2)})
      check_grad("embedding",
                 [&](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{embedding(idx, v[0], pad)};
                 },
                 {leaf({5, 4}, 7)});
  }
}

GRADCHECK_TEST(embedding, PaddingRowGetsNoGradient) {
  // torch semantics: the padding row is looked up normally but never receives a gradient, so
  // finite differences cannot check it; compare with the unpadded gradient instead.
  const Tensor idx = from_vector<int64_t>({1, 2, 2, 0, 1}, {5});
  Tensor w = leaf({4, 3}, 8);
  Tensor w2 = leaf({4, 3}, 8);
  Tensor proj = randn({5, 3}, default_generator(), DType::f64);
  backward(embedding(idx, w, 2), proj);
  backward(embedding(idx, w2, -1), proj);
  for (int64_t v = 0; v < 4; ++v)
    for (int64_t e = 0; e < 3; ++e)
      EXPECT_EQ(w.grad().get({v, e}), v == 2 ? 0.0 : w2.grad().get({v, e}));
  check_grad("embedding",
             [&](const std::vector<Tensor>& v) {
               return std::vector<Tensor>{embedding(from_vector<int64_t>({0, 1, 1}, {3}), v[0], 2)};
             },
             {leaf({4, 3}, 9)});
}

GRADCHECK_TEST(dropout, MaskConsistentGradientWithFixedGenerator) {
  for (double p : {0.2, 0.5}) {
    check_grad("dropout",
               [&](const std::vector<Tensor>& v) {
                 Generator g(1234);  // the same mask on every evaluation
                 return std::vector<Tensor>{dropout(v[0], p, true, &g)};
               },
               {leaf({4, 7}, 11)});
  }
}

GRADCHECK_TEST(dropout, IdentityWhenNotTrainingOrPZero) {
  Tensor x = leaf({3, 3}, 12);
  EXPECT_TRUE(dropout(x, 0.5, false).is_same(x));
  EXPECT_TRUE(dropout(x, 0.0, true).is_same(x));
  EXPECT_THROW(dropout(x, 1.5, true), Error);
}

}  // namespace
}  // namespace finch
