// Batch norm over the valid steps of a padded batch (autograd/masked_batch_norm.h, nn::StepMask):
// against PyTorch's BatchNorm1d on the unpadded sequences (tests/golden/make_masked_bn_goldens.py)
// — outputs at the valid steps, input/weight/bias gradients, running statistics — whatever the
// padding holds; an f64 gradcheck; nn::BatchNorm1d under a StepMask; bad masks are one sentence.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "autograd/masked_batch_norm.h"
#include "autograd/nn/nn.h"
#include "autograd/nn/sequence.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "tests/error_text.h"
#include "tests/golden/golden.h"

namespace finch {
namespace {

using test::all_close;

// mask [N, 1, T] from lengths.
Tensor step_mask(const std::vector<int64_t>& lens, int64_t T, DType dt) {
  std::vector<double> m;
  for (int64_t L : lens)
    for (int64_t t = 0; t < T; ++t) m.push_back(t < L ? 1.0 : 0.0);
  return from_vector(m, {int64_t(lens.size()), 1, T}).to(dt);
}

void golden_case(const std::string& c, DType dt, double tol) {
  SCOPED_TRACE(c + " " + dtype_name(dt));
  const SafetensorsFile g = test::load_golden("masked_batch_norm.safetensors");
  auto get = [&](const std::string& k) { return g.at(c + "." + k).to(dt).contiguous(); };
  const bool affine = g.contains(c + ".weight");
  const std::vector<int64_t> lens = g.at(c + ".lengths").contiguous().to_vector<int64_t>();
  const Tensor x0 = get("x");
  const Tensor m = step_mask(lens, x0.size(2), dt);
  Tensor x = x0.clone();
  x.set_requires_grad(true);
  Tensor w = affine ? get("weight").clone() : Tensor(), b = affine ? get("bias").clone() : Tensor();
  if (affine) w.set_requires_grad(true), b.set_requires_grad(true);
  Tensor rm = get("running_mean_in").clone(), rv = get("running_var_in").clone();
  const Tensor y = masked_batch_norm(x, m, rm, rv, w, b, 0.1, 1e-5);
  backward(sum(mul(y, get("dy"))));
  // y at the padding is whatever (the models mask it): compare the valid steps.
  EXPECT_TRUE(all_close(mul(y.detach(), m), get("y"), tol, tol));
  EXPECT_TRUE(all_close(x.grad(), get("dx"), tol, tol));
  EXPECT_TRUE(all_close(rm, get("running_mean"), tol, tol));
  EXPECT_TRUE(all_close(rv, get("running_var"), tol, tol));
  if (affine) {
    EXPECT_TRUE(all_close(w.grad(), get("dweight"), tol, tol));
    EXPECT_TRUE(all_close(b.grad(), get("dbias"), tol, tol));
  }
}

TEST(MaskedBatchNorm, MatchesTorchOnTheUnpaddedSequences) {
  for (const char* c : {"affine", "plain"}) {
    golden_case(c, DType::f64, 1e-9);
    golden_case(c, DType::f32, 2e-4);  // the padding is 1e3: f32 sums of the valid steps only
  }
}

TEST(MaskedBatchNorm, GradcheckF64) {
  Generator gen(3);
  const Tensor m = step_mask({5, 2, 4}, 5, DType::f64);
  std::vector<Tensor> in{mul(randn({3, 2, 5}, gen, DType::f64), 2.0), randn({2}, gen, DType::f64),
                         randn({2}, gen, DType::f64)};
  for (Tensor& t : in) t.set_requires_grad(true);
  const GradcheckResult r = gradcheck(
      [&](const std::vector<Tensor>& v) {
        return std::vector<Tensor>{mul(masked_batch_norm(v[0], m, Tensor(), Tensor(), v[1], v[2], 0.1, 1e-5), m)};
      },
      in);
  EXPECT_TRUE(r.ok) << r.message;
}

// The module: under a StepMask, training-mode BatchNorm1d is masked_batch_norm (running
// statistics included); eval mode and 2-D inputs are unchanged; outside the scope it is plain.
TEST(MaskedBatchNorm, BatchNorm1dUnderAStepMask) {
  Generator gen(4);
  const std::vector<int64_t> lens = {6, 2, 4};
  const Tensor m = step_mask(lens, 6, DType::f32);
  const Tensor x = randn({3, 5, 6}, gen);
  nn::BatchNorm1d bn(5), ref(5);
  NoGradGuard ng;
  Tensor rm = ref.running_mean.clone(), rv = ref.running_var.clone();
  const Tensor want = masked_batch_norm(x, m, rm, rv, ref.weight, ref.bias, 0.1, 1e-5);
  Tensor got;
  {
    nn::StepMask steps(m);
    got = bn.forward(x);
    EXPECT_THROW(bn.forward(randn({3, 5, 7}, gen)), Error);  // T differs from the mask's
    {
      nn::StepMask off{Tensor()};  // an inner scope without a mask: plain statistics
      EXPECT_TRUE(all_close(bn.forward(x), batch_norm(x, Tensor(), Tensor(), bn.weight, bn.bias, true), 1e-6, 1e-6));
    }
  }
  EXPECT_TRUE(all_close(got, want, 0, 0));
  bn.running_mean.copy_(rm), bn.running_var.copy_(rv);
  bn.eval();
  {
    nn::StepMask steps(m);
    EXPECT_TRUE(all_close(bn.forward(x), batch_norm(x, rm, rv, bn.weight, bn.bias, false), 0, 0));
  }
  EXPECT_FALSE(nn::StepMask::current().defined());
  {  // every step valid: no mask (the plain, fused, batch norm computes the same statistics)
    nn::StepMask full(step_mask({6, 6, 6}, 6, DType::f32));
    EXPECT_FALSE(nn::StepMask::current().defined());
  }
}

TEST(MaskedBatchNorm, BadMasksAreOneSentence) {
  Generator gen(5);
  const Tensor x = randn({2, 3, 4}, gen);
  EXPECT_ERROR_HAS(masked_batch_norm(x, step_mask({4, 4}, 5, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), 0.1,
                                     1e-5),
                   "expected a step mask [2, 1, 4]");
  EXPECT_ERROR_HAS(masked_batch_norm(x, step_mask({1, 0}, 4, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), 0.1,
                                     1e-5),
                   "more than 1 valid step per channel");
  EXPECT_ERROR_HAS(masked_batch_norm(x, mul(step_mask({4, 2}, 4, DType::f32), 0.5), Tensor(), Tensor(), Tensor(),
                                     Tensor(), 0.1, 1e-5),
                   "0s and 1s, found 0.5");
  EXPECT_ERROR_HAS(masked_batch_norm(randn({2, 3}, gen), step_mask({4, 2}, 4, DType::f32), Tensor(), Tensor(), Tensor(),
                                     Tensor(), 0.1, 1e-5),
                   "expected x [N, C, T]");
}

}  // namespace
}  // namespace finch
