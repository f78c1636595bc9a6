// Gradchecks for cross_entropy (ignore_index, label smoothing, [N, C, d] shapes, reductions),
// bce_with_logits (pos_weight, target gradient) and mse_loss.
#include <gtest/gtest.h>

#include "autograd/functional.h"
#include "tests/autograd/gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;

GRADCHECK_TEST(cross_entropy, IgnoreIndexSmoothingAndSpatialShapes) {
  struct Case {
    Shape logits;
    std::vector<int64_t> target;
    Shape tshape;
    int64_t ignore;
    double eps;
  };
  const std::vector<Case> cases = {
      {{4, 5}, {1, 4, -100, 0}, {4}, -100, 0.0},
      {{4, 5}, {1, 4, -100, 0}, {4}, -100, 0.1},
      {{3, 4}, {2, 2, 0}, {3}, 2, 0.3},  // ignore_index that is a real class
      {{2, 3, 4}, {0, 1, 2, 1, -100, 2, 2, 0}, {2, 4}, -100, 0.1},
      {{2, 3, 2, 2}, {0, 1, 2, 1, 1, 2, 2, 0}, {2, 2, 2}, 1, 0.05},
      {{6}, {3}, {}, -100, 0.1},
  };
  uint64_t seed = 1;
  for (const Case& c : cases)
    for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum}) {
      SCOPED_TRACE(shape_str(c.logits));
      const Tensor t = from_vector<int64_t>(c.target, c.tshape);
      check_grad("cross_entropy",
                 [&](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{cross_entropy(v[0], t, red, c.ignore, c.eps)};
                 },
                 {leaf(c.logits, seed++, 2.0)});
    }
}

GRADCHECK_TEST(bce_with_logits, PosWeightAndTargetGradients) {
  uint64_t seed = 20;
  for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum})
    for (bool pw : {false, true}) {
      Generator g(seed++);
      Tensor t = rand({3, 4}, g, DType::f64);
      t.set_requires_grad(true);
      std::vector<Tensor> in{leaf({3, 4}, seed++, 3.0), t};
      if (pw) {
        Tensor w = rand({4}, g, DType::f64);
        double* p = w.data<double>();
        for (int i = 0; i < 4; ++i) p[i] += 0.5;
        w.set_requires_grad(true);
        in.push_back(w);
      }
      check_grad("bce_with_logits",
                 [&](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{
                       bce_with_logits(v[0], v[1], red, pw ? v[2] : Tensor())};
                 },
                 in);
    }
}

GRADCHECK_TEST(mse_loss, InputAndTarget) {
  uint64_t seed = 40;
  for (Reduction red : {Reduction::none, Reduction::mean, Reduction::sum})
    for (const Shape& s : {Shape{5}, Shape{2, 3, 2}}) {
      check_grad("mse_loss",
                 [&](const std::vector<Tensor>& v) {
                   return std::vector<Tensor>{mse_loss(v[0], v[1], red)};
                 },
                 {leaf(s, seed, 1.0), leaf(s, seed + 1, 1.0)});
      seed += 2;
    }
}

}  // namespace
}  // namespace finch
