// Synchronized batch norm in autograd: gradcheck of its backward in one process (where it is
// batch norm), and nn::convert_sync_batchnorm switching BatchNorm modules over and back.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "autograd/sync_batch_norm.h"
#include "framework/grad_mode.h"
#include "tests/autograd/gradcheck_case.h"

namespace finch {
namespace {

using test::check_grad;
using test::leaf;

void sync_bn_case(const Shape& shape, bool affine, bool running, uint64_t seed) {
  SCOPED_TRACE(shape_str(shape) + (affine ? " affine" : "") + (running ? " running" : ""));
  const int64_t C = shape[1];
  auto comm = dist::make_single_process();
  Tensor rm = running ? full({C}, 0.2, DType::f64) : Tensor();
  Tensor rv = running ? full({C}, 1.5, DType::f64) : Tensor();
  std::vector<Tensor> in{leaf(shape, seed, 2.0)};
  if (affine) {
    in.push_back(leaf({C}, seed + 1));
    in.push_back(leaf({C}, seed + 2));
  }
  check_grad("sync_batch_norm",
             [&](const std::vector<Tensor>& v) {
               return std::vector<Tensor>{sync_batch_norm(v[0], rm, rv, affine ? v[1] : Tensor(),
                                                          affine ? v[2] : Tensor(), 0.1, 1e-5, *comm)};
             },
             in);
}

GRADCHECK_TEST(sync_batch_norm, OneProcessWithAndWithoutAffine) {
  uint64_t seed = 11;
  for (bool affine : {true, false}) {
    sync_bn_case({4, 3}, affine, true, seed += 3);
    sync_bn_case({2, 3, 5}, affine, !affine, seed += 3);
    sync_bn_case({2, 2, 3, 3}, affine, true, seed += 3);
  }
}

// A Sequential with two BatchNorms, one shared under a second name.
std::shared_ptr<nn::Sequential> bn_net() {
  auto bn = std::make_shared<nn::BatchNorm2d>(3);
  return std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      bn, std::make_shared<nn::ReLU>(), std::make_shared<nn::BatchNorm2d>(3), bn});
}

TEST(SyncBatchNormModule, ConvertedModulesTrainLikeBatchNormInOneProcessAndEvalUnchanged) {
  auto comm = dist::make_single_process();
  auto plain = bn_net(), synced = bn_net();
  EXPECT_EQ(nn::convert_sync_batchnorm(*synced, comm.get()), 2);  // the shared one counted once
  Generator g(5);
  const Tensor x = add(mul(randn({4, 3, 5, 5}, g), 2.0), 1.0);
  for (int step = 0; step < 3; ++step) {
    const Tensor a = plain->forward(x), b = synced->forward(x);
    const auto va = a.to_vector<float>(), vb = b.to_vector<float>();
    for (size_t i = 0; i < va.size(); ++i) ASSERT_NEAR(va[i], vb[i], 1e-4) << i;
  }
  // Running statistics and the batch counter moved alike.
  const auto pa = plain->state_dict(), pb = synced->state_dict();
  for (const auto& [name, t] : pa) {
    const Tensor u = pb.at(name);
    if (t.dtype() == DType::i64) {
      EXPECT_EQ(t.item(), u.item()) << name;
      continue;
    }
    const auto va = t.to_vector<float>(), vb = u.to_vector<float>();
    for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], 1e-5) << name;
  }
  // Gradients of the parameters flow through the synchronized rule.
  const Tensor loss = sum(mul(synced->forward(x), x));
  backward(loss);
  auto* bn0 = dynamic_cast<nn::BatchNorm*>(synced->named_children()[0].second.get());
  ASSERT_NE(bn0, nullptr);
  EXPECT_TRUE(bn0->weight.grad().defined());
  // Eval mode never synchronizes: bit for bit the output without the communicator.
  synced->eval();
  const auto with = synced->forward(x).to_vector<float>();
  EXPECT_EQ(nn::convert_sync_batchnorm(*synced, nullptr), 2);
  EXPECT_EQ(bn0->sync_comm, nullptr);
  EXPECT_EQ(synced->forward(x).to_vector<float>(), with);
}

}  // namespace
}  // namespace finch
