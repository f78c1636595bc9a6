// `finch emit-c` (compile/emit_c.h): int8 programs of the zoo (LeNet-5, ResNet-20, MobileNetV2,
// MobileNet v1, a uint8-io ResNet-20) emitted as C, compiled with the system C compiler (C99, and
// the same files as C++17), run on inputs that reach the clamps, and compared byte for byte with
// the runtime; an fp32 program within its stated tolerance; and the refusals, one sentence each.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "compile/capture.h"
#include "compile/emit_c.h"
#include "compile/passes.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/random.h"
#include "models/factory.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "tests/error_text.h"
#include "tests/compile/test_emit_c_util.h"
#include "tests/temp_dir.h"

using namespace finch;

namespace {

using finch::test::build;
using finch::test::Built;
using finch::test::shell;
using finch::test::slurp;

// The int8 program of a zoo model as `finch quantize` builds it: prepared (BN folded, activations
// fused), calibrated on random-normal batches, converted, captured, lowered, constants folded.
runtime::Graph int8_program(const std::string& model_name, int64_t c, int64_t hw, const std::string& qconfig = "int8",
                            double width = 1.0) {
  Generator gen(7);
  models::CreateOptions co;
  co.gen = &gen;
  co.width_mult = width;
  co.cifar = model_name != "lenet5" && model_name != "resnet20";
  auto model = models::create(model_name, c, 10, co);
  {
    NoGradGuard ng;
    model->train();
    for (int i = 0; i < 2; ++i) model->forward(randn({8, c, hw, hw}, gen));  // BN statistics
  }
  model->eval();
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset(qconfig);
  const Tensor example = randn({1, c, hw, hw}, gen);
  auto q = quant::prepare(*model, example, po, false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 3; ++i) model->forward(randn({8, c, hw, hw}, gen));  // calibration
  }
  quant::convert(*q);
  q->enable_observers(false);
  runtime::Graph g = compile::capture_graph(*model, example);
  compile::lower_quantized(g);
  compile::fold_constants(g);
  return g;
}

runtime::Graph fp32_program(const std::string& model_name, int64_t c, int64_t hw) {
  Generator gen(5);
  models::CreateOptions co;
  co.gen = &gen;
  auto model = models::create(model_name, c, 10, co);
  model->eval();
  runtime::Graph g = compile::capture_graph(*model, randn({1, c, hw, hw}, gen));
  compile::fold_batch_norm(g);
  compile::fuse_activations(g);
  compile::fold_constants(g);
  compile::remove_dead(g);
  return g;
}

// Records: three random-normal inputs, one scaled ×40 (quantize and every requantization clamp),
// one of zeros. Returns them as one [R, ...] tensor.
Tensor records(const Shape& in_shape, Generator& gen) {
  Shape s = in_shape;
  s[0] = 5;
  Tensor x = randn(s, gen);
  const int64_t per = shape_numel(in_shape);
  float* p = x.data<float>();
  for (int64_t i = 3 * per; i < 4 * per; ++i) p[i] *= 40.0f;
  for (int64_t i = 4 * per; i < 5 * per; ++i) p[i] = 0.0f;
  return x;
}

// Runs the emitted program on every record of x and returns its raw outputs.
std::string run_emitted(const std::string& exe, const Tensor& x, const finch::test::TempDir& dir) {
  {
    std::ofstream f(dir / "in.bin", std::ios::binary);
    f.write(reinterpret_cast<const char*>(x.contiguous().data<float>()), std::streamsize(x.nbytes()));
  }
  EXPECT_EQ(shell(exe + " " + (dir / "in.bin") + " --out " + (dir / "out.bin") + " --quiet"), 0);
  return slurp(dir / "out.bin");
}

// The runtime's outputs (optimized kernels, batch 1 per record) as raw bytes.
std::string run_runtime(const runtime::Graph& g, const Tensor& x) {
  runtime::Program p(g, "test program");
  std::string bytes;
  for (int64_t r = 0; r < x.size(0); ++r) {
    const Tensor y = p.run(x.narrow(0, r, 1).contiguous()).contiguous();
    bytes.append(reinterpret_cast<const char*>(y.data<float>()), y.nbytes());
  }
  return bytes;
}

struct Case {
  std::string model, qconfig;
  int64_t c, hw;
  double width;
  bool cxx;
};
void PrintTo(const Case& c, std::ostream* os) { *os << c.model << " " << c.qconfig << (c.cxx ? " as C++" : ""); }

class EmitCInt8 : public ::testing::TestWithParam<Case> {};

TEST_P(EmitCInt8, OutputsEqualTheRuntimeByteForByte) {
  SKIP_WITHOUT_COMPILER();
  const Case c = GetParam();
  const runtime::Graph g = int8_program(c.model, c.c, c.hw, c.qconfig, c.width);
  finch::test::TempDir dir("emit_c");
  const Built b = build(g, dir, c.cxx);
  ASSERT_TRUE(b.error.empty()) << b.error;
  EXPECT_EQ(dir.count(), 5) << "net.h, net.c, net_main.c, the compiler's log and the executable: no temporary left";
  Generator gen(11);
  const Tensor x = records(g.values[size_t(g.inputs[0])].shape, gen);
  const std::string want = run_runtime(g, x), got = run_emitted(b.exe, x, dir);
  ASSERT_EQ(got.size(), want.size());
  int64_t differing = 0;
  for (size_t i = 0; i < got.size(); i += 4) differing += std::memcmp(&got[i], &want[i], 4) != 0;
  EXPECT_EQ(differing, 0) << c.model << " " << c.qconfig << ": outputs differing from the runtime's";
}

INSTANTIATE_TEST_SUITE_P(Zoo, EmitCInt8,
                         ::testing::Values(Case{"lenet5", "int8", 1, 28, 1.0, false},
                                           Case{"lenet5", "int8-per-tensor", 1, 28, 1.0, true},
                                           Case{"resnet20", "int8", 3, 32, 1.0, false},
                                           Case{"resnet20", "uint8-io", 3, 32, 1.0, false},
                                           Case{"mobilenetv2", "int8", 3, 32, 0.25, false},
                                           Case{"mobilenet_v1", "int8", 3, 32, 0.25, false}),
                         [](const auto& info) {
                           std::string s = info.param.model + "_" + info.param.qconfig + (info.param.cxx ? "_cxx" : "");
                           for (char& ch : s)
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           return s;
                         });

// The largest |emitted − runtime| / (1e-3 + |runtime|) over every output of every record.
float float_program_difference(const runtime::Graph& g) {
  finch::test::TempDir dir("emit_c");
  const Built b = build(g, dir);
  EXPECT_TRUE(b.error.empty()) << b.error;
  if (!b.error.empty()) return INFINITY;
  Generator gen(3);
  const Tensor x = records(g.values[size_t(g.inputs[0])].shape, gen);
  const std::string want = run_runtime(g, x), got = run_emitted(b.exe, x, dir);
  EXPECT_EQ(got.size(), want.size());
  float worst = 0;
  for (size_t i = 0; i + 4 <= got.size() && i + 4 <= want.size(); i += 4) {
    float a, w;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&w, &want[i], 4);
    worst = std::max(worst, std::fabs(a - w) / (1e-3f + std::fabs(w)));
  }
  return worst;
}

// fp32: float conv2d/linear sum in another order than the runtime's packed kernels, so the
// stated tolerance (docs/emit-c.md) is 1e-4 · (1e-3 + |runtime|).
TEST(EmitC, Fp32ProgramWithinFloatRounding) {
  SKIP_WITHOUT_COMPILER();
  EXPECT_LT(float_program_difference(fp32_program("lenet5", 1, 28)), 1e-4f);
}

// fp16: the f16 weights widened to f32 at emit time, as the runtime's fp32 compute does.
TEST(EmitC, Fp16ProgramWithinFloatRounding) {
  SKIP_WITHOUT_COMPILER();
  const runtime::Graph g = int8_program("lenet5", 1, 28, "fp16");
  bool f16 = false;
  for (const auto& v : g.values) f16 = f16 || (v.is_constant() && v.dtype == DType::f16);
  ASSERT_TRUE(f16) << "the fp16 program stores f16 weights";
  EXPECT_LT(float_program_difference(g), 1e-4f);
}

TEST(EmitC, RefusesWhatItDoesNotCoverInOneSentence) {
  runtime::Graph g = fp32_program("lenet5", 1, 28);
  // A sigmoid node after the classifier: the runtime runs it, emit-c does not cover it.
  runtime::Graph unsupported = g;
  runtime::Node s;
  s.op = "sigmoid";
  s.name = "head.sigmoid";
  s.inputs = {unsupported.outputs[0]};
  runtime::Value v = unsupported.values[size_t(unsupported.outputs[0])];
  v.name = "probabilities";
  s.outputs = {unsupported.add_value(v)};
  unsupported.nodes.push_back(s);
  unsupported.outputs = {s.outputs[0]};
  EXPECT_ERROR_HAS(compile::emit_c(unsupported, "net", "p.finch"),
                    "p.finch: node 'head.sigmoid' (sigmoid) is an op emit-c does not cover");

  runtime::Graph dynamic = g;
  dynamic.meta["variable_sequence"] = true;
  EXPECT_ERROR_HAS(compile::emit_c(dynamic, "net", "p.finch"), "takes inputs of variable length");

  EXPECT_ERROR_HAS(compile::emit_c(g, "3net", "p.finch"), "expected --name to be a C identifier");
  EXPECT_ERROR_HAS(compile::emit_c(g, "net;rm", "p.finch"), "expected --name to be a C identifier");

  // Hostile text in the program (a class name closing the comment) stays inside the comment.
  runtime::Graph hostile = g;
  hostile.meta["classes"] = {"*/ int evil; /*"};
  const compile::EmittedC e = compile::emit_c(hostile, "net", "p.finch");
  EXPECT_EQ(e.source.find("*/ int evil"), std::string::npos);
  EXPECT_EQ(e.header.find("*/ int evil"), std::string::npos);
}

TEST(EmitC, UnwritableFolderIsOneSentenceAndLeavesNothing) {
  const compile::EmittedC e = compile::emit_c(fp32_program("lenet5", 1, 28), "net", "p.finch");
  finch::test::TempDir dir("emit_c");
  { std::ofstream(dir / "file") << "x"; }
  EXPECT_ERROR_HAS(compile::write_emitted_c(e, dir / "file/sub"), "emit-c: cannot create the output folder");
  compile::write_emitted_c(e, dir / "out");
  EXPECT_EQ(slurp(dir / "out/net.c"), e.source);
  EXPECT_EQ(slurp(dir / "out/net.h"), e.header);
  EXPECT_EQ(slurp(dir / "out/net_main.c"), e.main);
}

// The emitted main refuses an input file that is not whole records, in one sentence.
TEST(EmitC, MainRefusesAPartialRecord) {
  SKIP_WITHOUT_COMPILER();
  finch::test::TempDir dir("emit_c");
  const Built b = build(int8_program("lenet5", 1, 28), dir);
  ASSERT_TRUE(b.error.empty()) << b.error;
  { std::ofstream(dir / "short.bin", std::ios::binary) << "abc"; }
  EXPECT_EQ(shell(b.exe + " " + (dir / "short.bin") + " 2> " + (dir / "err.txt")), 1);
  EXPECT_NE(slurp(dir / "err.txt").find("holds 3 bytes; expected a positive multiple of 3136"), std::string::npos)
      << slurp(dir / "err.txt");
  EXPECT_EQ(shell(b.exe + " " + (dir / "missing.bin") + " 2> " + (dir / "err.txt")), 1);
  EXPECT_NE(slurp(dir / "err.txt").find("cannot open the input file"), std::string::npos);
}

}  // namespace
