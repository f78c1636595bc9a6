// The program commands of `finch`: compile (the fp32 program of a trained model), run (a
// program over a dataset: accuracy, per-class accuracy, batch-1 latency, --profile), inspect (the
// graph as a table or Graphviz) and verify (the program against the simulated quantized model,
// layer by layer, bit for bit).
#pragma once

#include <string>

#include "apps/lib/train_options.h"

namespace CLI {
class App;
}

namespace finch::apps {

struct ProgramOptions {
  DataOptions data;           // --model, --checkpoint, --dataset, --data, --mean/--std, limits, threads
  std::string program;        // the .finch file (run, inspect, verify)
  std::string out;            // compile: the .finch file to write
  int64_t batch_size = 64;
  int64_t latency_images = 100;
  bool profile = false;       // run: per-node time table
  std::string json;           // run/verify: a JSON report
  std::string dot;            // inspect: Graphviz file
  std::string sparse = "measured";  // inspect: which nodes run sparse with this runtime::SparseKernels
  bool reference_kernels = false;  // run/verify: the scalar reference kernels, not the optimized ones
};

void add_compile_options(CLI::App& app, ProgramOptions& o);
void add_run_options(CLI::App& app, ProgramOptions& o);
void add_inspect_options(CLI::App& app, ProgramOptions& o);
void add_verify_options(CLI::App& app, ProgramOptions& o);

int run_compile(ProgramOptions o, bool model_given);
int run_run(ProgramOptions o);
int run_inspect(const ProgramOptions& o);
int run_verify(ProgramOptions o);
// One sentence when verify was given no --checkpoint (image and series programs need one; a BERT
// program takes --weights instead, bert_sim_check_cmd.h).
void require_verify_checkpoint(const ProgramOptions& o);

}  // namespace finch::apps
