// Lowering a quantized model to an integer program: the program's outputs equal the simulated
// model's bit for bit (static int8, fused and unfused, per-tensor and per-channel, fp16 and
// dynamic), on the zoo's residual (ResNet) and inverted-residual (MobileNetV2) networks; and the
// optimized kernels give every value exactly as the reference kernels do.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "autograd/functional.h"
#include "framework/cpu_features.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/compile/graph_test_util.h"

using namespace finch;

namespace {

using test::count_op;
using test::differing;

struct Case {
  std::string model, qconfig;
  bool fuse = true, dynamic = false;
  std::vector<std::string> skip = {};  // float fallback (mixed precision)
};



}  // namespace

class LowerZoo : public ::testing::TestWithParam<Case> {};

TEST_P(LowerZoo, ProgramEqualsSimulatedModelBitForBit) {
  const Case c = GetParam();
  Generator gen(3);
  models::CreateOptions co;
  co.gen = &gen;
  auto model = models::create(c.model, 1, 10, co);
  // A few training-mode batches give BN statistics that are not the identity.
  {
    NoGradGuard ng;
    model->train();
    for (int i = 0; i < 3; ++i) model->forward(randn({8, 1, 28, 28}, gen));
  }
  model->eval();
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(c.qconfig);
  po.fuse = c.fuse;
  po.dynamic = c.dynamic;
  po.skip = c.skip;
  const Tensor example = randn({1, 1, 28, 28}, gen);
  auto q = quant::prepare(*model, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 4; ++i) model->forward(randn({16, 1, 28, 28}, gen));  // calibration
  }
  quant::convert(*q);
  q->enable_observers(false);

  runtime::Graph g = compile::capture_graph(*model, example);
  const int integer = compile::lower_quantized(g);
  if (!c.skip.empty()) {
    // The skipped stage stays fp32 (float conv2d nodes), with dequantize/quantize at its edges.
    EXPECT_GT(count_op(g, "conv2d"), 0);
    EXPECT_GT(count_op(g, "dequantize"), 1);
  }
  if (c.qconfig == "fp16") EXPECT_EQ(integer, 0);
  else EXPECT_GT(integer, 0);
  EXPECT_EQ(count_op(g, "fake_quant"), 0) << "every fake_quant is lowered";
  // Bit for bit is the fp32 compute's promise: on an ARMv8.2 FP16 CPU (a Pi 5) an fp16 program's
  // conv2d/linear would run natively in fp16 and differ by fp16 rounding (checked against the
  // fp32 compute in tests/runtime/test_f16_program.cc), so this test loads with it switched off.
  set_arm_fp16_disabled(true);
  runtime::Program p(g, c.model);
  {
    const char* env = std::getenv("FINCH_DISABLE_FP16");
    set_arm_fp16_disabled(env != nullptr && *env != '\0' && std::string(env) != "0");
  }
  runtime::ProgramOptions ro;
  ro.reference_kernels = true;
  runtime::Program ref(g, c.model, ro);
  // The integer nodes run on the optimized kernels (not silently on the reference ones).
  EXPECT_EQ(ref.optimized_nodes(), 0);
  if (integer > 0) {
    EXPECT_GT(p.optimized_nodes(), 0);
  }
  for (int64_t n : {1, 5}) {
    const Tensor x = randn({n, 1, 28, 28}, gen);
    Tensor want;
    {
      NoGradGuard ng;
      want = model->forward(x);
    }
    // A program without integer nodes (fp16) runs its conv2d/linear on the packed fp32 kernels,
    // which sum in another order than the simulation's ops/ (as an fp32 program's do): its
    // reference kernels are the exact ones, the optimized ones agree to float rounding.
    const bool float_program = integer == 0;
    const Tensor got = (float_program ? ref : p).run(x);
    ASSERT_EQ(got.shape(), want.shape());
    EXPECT_EQ(differing(got, want), 0) << c.model << " " << c.qconfig << (c.fuse ? "" : " unfused") << " batch " << n;
    // Every value of the program, not only the output: optimized kernels equal the reference.
    const std::vector<Tensor> fast = p.run_all({x}), slow = ref.run_all({x});
    for (size_t v = 0; v < fast.size(); ++v)
      if (fast[v].defined() && !g.values[v].is_constant()) {
        if (float_program)
          EXPECT_LE(test::max_abs_diff(fast[v], slow[v]), 1e-4f * (1.0f + test::max_abs_diff(slow[v], zeros_like(slow[v]))))
              << "value " << g.values[v].name << " batch " << n;
        else
          EXPECT_EQ(differing(fast[v], slow[v]), 0) << "value " << g.values[v].name << " batch " << n;
      }
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, LowerZoo,
    ::testing::Values(Case{"resnet20", "int8"}, Case{"resnet20", "int8-per-tensor"}, Case{"resnet20", "int8", false},
                      Case{"resnet20", "uint8-io"}, Case{"mobilenetv2", "int8"}, Case{"mobilenetv2", "int8", false},
                      Case{"lenet5", "int8"}, Case{"resnet20", "fp16"}, Case{"lenet5", "int8", true, true},
                      Case{"resnet20", "int8", true, false, {"layer2"}},
                      Case{"mobilenetv2", "int8", true, false, {"features.1", "classifier"}}),
    [](const auto& info) {
      std::string s = info.param.model + "_" + info.param.qconfig + (info.param.fuse ? "" : "_unfused") +
                      (info.param.dynamic ? "_dynamic" : "");
      for (const auto& k : info.param.skip) s += "_skip_" + k;
      for (char& ch : s)
        if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
      return s;
    });
