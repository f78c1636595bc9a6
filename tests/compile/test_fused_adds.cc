// The runtime's load-time fusion of residual adds on fp32 programs compiled from the zoo: every
// add of ResNet-20 and MobileNetV2 that reads a conv2d's only output runs as that conv's
// epilogue (runtime/op_table.h prepare_conv2d_add), and run() gives the bits of the program run
// node by node (run_all(), and a Program loaded with ProgramOptions::fuse = false), at batch 1
// and 3, 1 and 2 threads. (The int8 fusion: tests/runtime/test_qs8_conv_add.cc.)
#include <gtest/gtest.h>

#include <cstring>

#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/factory.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

using namespace finch;

namespace {

// Bit equality of two f32 tensors.
bool same_bits(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != DType::f32 || b.dtype() != DType::f32) return false;
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data<float>(), cb.data<float>(), size_t(ca.numel()) * sizeof(float)) == 0;
}

class FusedAdds : public ::testing::TestWithParam<std::pair<std::string, int>> {};

TEST_P(FusedAdds, Fp32ProgramFusedEqualsUnfused) {
  const auto& [name, adds] = GetParam();
  Generator gen(11);
  models::CreateOptions co;
  co.gen = &gen;
  auto model = models::create(name, 1, 10, co);
  model->eval();
  runtime::Graph g = compile::capture_graph(*model, randn({1, 1, 28, 28}, gen));
  compile::fold_batch_norm(g);
  compile::fuse_activations(g);
  compile::remove_dead(g);
  runtime::Program fused(g, name);
  runtime::ProgramOptions off;
  off.fuse = false;
  runtime::Program plain(g, name, off);
  EXPECT_EQ(fused.fused_nodes(), adds) << "adds of " << name << " fused into their conv";
  EXPECT_EQ(plain.fused_nodes(), 0);
  EXPECT_EQ(test::count_op(g, "add"), adds);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t n : {1, 3}) {
      const Tensor x = randn({n, 1, 28, 28}, gen);
      const Tensor got = fused.run(x);
      EXPECT_TRUE(same_bits(got, plain.run(x))) << name << " batch " << n << ", " << threads << " threads";
      const auto all = fused.run_all({x});
      EXPECT_TRUE(same_bits(got, all[size_t(fused.graph().outputs[0])])) << name << " batch " << n;
    }
  }
  set_num_threads(1);
}

INSTANTIATE_TEST_SUITE_P(Zoo, FusedAdds,
                         ::testing::Values(std::pair<std::string, int>{"resnet20", 9},
                                           std::pair<std::string, int>{"mobilenetv2", 10}));

}  // namespace
