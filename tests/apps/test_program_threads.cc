// Whole programs give bit-identical outputs at 1, 2 and 3 threads, under the per-node thread
// choice (runtime/thread_choice.h: its learning runs, the runs after it and its exploration
// runs) and without it: int8 and fp32 ResNet-20 and MobileNetV2 (CIFAR variants, seeded init,
// 1×28×28), batch 1 and 3. The fp32 kernels are exact too: every output element sums over K in
// the same order in any split (the split is over pixel tiles and channel panels, never over K).
// Nothing here is timed: which way each node runs depends on this machine, the outputs must not.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "apps/lib/program_build.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "runtime/thread_choice.h"

namespace finch::test {
namespace {

runtime::Graph build(const std::string& model, bool int8) {
  Generator gen(7);
  models::CreateOptions co;
  co.cifar = true;
  co.input_size = 28;
  co.gen = &gen;
  nn::ModulePtr m = models::create(model, 1, 10, co);
  m->eval();
  NoGradGuard ng;
  const Tensor example = randn({1, 1, 28, 28}, gen);
  const nlohmann::json meta = {{"model", model}, {"dataset", "random-normal"}, {"mean", {0.f}}, {"std", {1.f}},
                               {"classes", {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}}, {"input", {1, 28, 28}}};
  if (!int8) return apps::float_program(*m, example, meta);
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(*m, example, po, /*qat=*/false);
  m->forward(randn({8, 1, 28, 28}, gen));  // calibration
  quant::convert(*q);
  return apps::quantized_program(*q, example, meta, "static", "int8");
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  return ca.dtype() == cb.dtype() && ca.shape() == cb.shape() &&
         std::memcmp(ca.raw_data(), cb.raw_data(), size_t(ca.numel()) * dtype_size(ca.dtype())) == 0;
}

void check_model(const std::string& model, bool int8) {
  const runtime::Graph g = build(model, int8);
  Generator gen(11);
  for (int64_t batch : {1, 3}) {
    const Tensor x = randn({batch, 1, 28, 28}, gen);
    set_num_threads(1);
    const Tensor ref = runtime::Program(g, model).run(x);
    for (int threads : {2, 3})
      for (bool choose : {true, false}) {
        set_num_threads(threads);
        runtime::ProgramOptions o;
        o.choose_threads = choose;
        runtime::Program p(g, model, o);
        // Through the learning runs, past them, and through one exploration pair.
        const int runs = choose ? runtime::ThreadChoice::kSettleRuns + runtime::ThreadChoice::kLearnRuns +
                                    runtime::ThreadChoice::kExploreEvery + 3
                             : 3;
        for (int r = 0; r < runs; ++r)
          ASSERT_TRUE(same_bytes(p.run(x), ref)) << model << (int8 ? " int8" : " fp32") << ", batch " << batch << ", "
                                                 << threads << " threads, choice " << choose << ", run " << r;
      }
  }
  set_num_threads(1);
}

TEST(ProgramThreads, ResNet20Int8IsBitIdenticalAtAnyThreadCount) { check_model("resnet20", true); }
TEST(ProgramThreads, ResNet20Fp32IsBitIdenticalAtAnyThreadCount) { check_model("resnet20", false); }
TEST(ProgramThreads, MobileNetV2Int8IsBitIdenticalAtAnyThreadCount) { check_model("mobilenetv2", true); }
TEST(ProgramThreads, MobileNetV2Fp32IsBitIdenticalAtAnyThreadCount) { check_model("mobilenetv2", false); }

}  // namespace
}  // namespace finch::test
