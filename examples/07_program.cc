// Course example 07 (docs/course/07-programs.md): compile a model into a .finch program from C++
// — capture the forward into a graph, run the passes, write the file, load it with the runtime
// alone and run it — once in fp32 and once in int8 (post-training quantization).
//
// Model: conv3(3→8)+BN+ReLU, conv3(8→8, stride 2)+BN+ReLU, global average pool, linear(8→5).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <unistd.h>
#include <vector>

#include "autograd/functional.h"
#include "autograd/nn/nn.h"
#include "compile/capture.h"
#include "compile/passes.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "quant/prepare.h"
#include "quant/qconfig.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

using namespace finch;
namespace fs = std::filesystem;

namespace {
std::shared_ptr<nn::Sequential> make_model(Generator& gen) {
  using nn::ModulePtr;
  return std::make_shared<nn::Sequential>(std::initializer_list<ModulePtr>{
      std::make_shared<nn::Conv2d>(3, 8, 3, 1, 1, 1, 1, false, &gen), std::make_shared<nn::BatchNorm2d>(8),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::Conv2d>(8, 8, 3, 2, 1, 1, 1, false, &gen),
      std::make_shared<nn::BatchNorm2d>(8), std::make_shared<nn::ReLU>(), std::make_shared<nn::AdaptiveAvgPool2d>(1),
      std::make_shared<nn::Flatten>(), std::make_shared<nn::Linear>(8, 5, true, &gen)});
}

void print_nodes(const char* title, const runtime::Graph& g) {
  std::printf("%s (%zu nodes):", title, g.nodes.size());
  for (const auto& n : g.nodes) std::printf(" %s", n.op.c_str());
  std::printf("\n");
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
  const std::vector<float> va = a.to_vector<float>(), vb = b.to_vector<float>();
  double m = 0;
  for (size_t i = 0; i < va.size(); ++i) m = std::max(m, std::fabs(double(va[i]) - double(vb[i])));
  return m;
}
}  // namespace

int main() {
  set_num_threads(1);
  Generator gen(8);
  auto model = make_model(gen);
  {
    // A few training-mode batches give the BNs running statistics that are not the identity
    // (otherwise folding them would be trivially exact).
    NoGradGuard ng;
    for (int i = 0; i < 4; ++i) model->forward(randn({16, 3, 12, 12}, gen) * 2.0 + 0.5);
  }
  model->eval();
  const Tensor example = randn({1, 3, 12, 12}, gen);  // fixes the program's input shape (batch free)
  const Tensor x = randn({4, 3, 12, 12}, gen);
  Tensor want;
  {
    NoGradGuard ng;
    want = model->forward(x);
  }
  const fs::path dir = fs::temp_directory_path() / ("finch_course_07_" + std::to_string(::getpid()));
  fs::create_directories(dir);

  // 1. Capture: run the forward once and record every op into a graph (runtime/graph.h).
  runtime::Graph g = compile::capture_graph(*model, example);
  print_nodes("captured", g);
  // 2. Passes: each one a function over the graph.
  //    The order matters (BN must fold before the conv's ReLU can fuse), so one call per line.
  const int folded = compile::fold_batch_norm(g);
  const int fused = compile::fuse_activations(g);
  const int constants = compile::fold_constants(g);
  const int dead = compile::remove_dead(g);
  std::printf("fold_batch_norm %d, fuse_activations %d, fold_constants %d, remove_dead %d\n", folded, fused,
              constants, dead);
  print_nodes("after passes", g);
  // 3. The file: versioned, checksummed; written to a temporary name and renamed.
  const std::string fp32_path = (dir / "model_fp32.finch").string();
  runtime::write_program(g, fp32_path);
  // 4. Load and run with the runtime alone (what finch_run links: no autograd, no training code).
  runtime::Program fp32(runtime::read_program(fp32_path), fp32_path);
  const Tensor got = fp32.run(x);
  std::printf("fp32 program: %s -> %s, max |program - model| = %.1e, activation arena %lld bytes\n",
              shape_str(x.shape()).c_str(), shape_str(got.shape()).c_str(), max_abs_diff(got, want),
              static_cast<long long>(fp32.memory().arena_bytes));

  // 5. int8: prepare (observers), calibrate on a few batches, convert, capture, lower.
  quant::PrepareOptions po;
  po.qconfig = quant::qconfig_preset("int8");
  auto q = quant::prepare(*model, example, po, /*qat=*/false);
  {
    NoGradGuard ng;
    for (int i = 0; i < 4; ++i) model->forward(randn({16, 3, 12, 12}, gen));
  }
  quant::convert(*q);
  q->enable_observers(false);
  Tensor sim;
  {
    NoGradGuard ng;
    sim = model->forward(x);
  }
  runtime::Graph gi = compile::capture_graph(*model, example);
  const int integer = compile::lower_quantized(gi);
  compile::fold_constants(gi);
  print_nodes("int8 program", gi);
  const std::string int8_path = (dir / "model_int8.finch").string();
  runtime::write_program(gi, int8_path);
  runtime::Program int8(runtime::read_program(int8_path), int8_path);
  const Tensor got8 = int8.run(x);
  std::printf("int8 program: %d integer nodes, max |program - simulated| = %.1e, max |program - float| = %.3f\n",
              integer, max_abs_diff(got8, sim), max_abs_diff(got8, want));
  std::printf("file sizes: fp32 %lld bytes, int8 %lld bytes\n", static_cast<long long>(fs::file_size(fp32_path)),
              static_cast<long long>(fs::file_size(int8_path)));

  // 6. A damaged file is refused with a sentence, never run.
  {
    std::FILE* f = std::fopen(int8_path.c_str(), "r+b");
    std::fseek(f, -5, SEEK_END);
    std::fputc('X', f);
    std::fclose(f);
  }
  int rc = 0;
  try {
    runtime::read_program(int8_path);
    std::printf("a damaged file loaded: this must not happen\n");
    rc = 1;
  } catch (const Error& e) {
    // The sentence names the file (a temporary path) and both checksums; print its gist.
    const std::string msg = e.what();
    std::fprintf(stderr, "%s\n", msg.c_str());
    std::printf("damaged file refused: %s\n",
                msg.find("checksum mismatch") != std::string::npos ? "checksum mismatch" : msg.c_str());
  }
  fs::remove_all(dir);
  return rc != 0 || max_abs_diff(got8, sim) != 0 ? 1 : 0;
}
