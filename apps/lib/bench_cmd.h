// `finch bench` (latency of a .finch program on random inputs: median / p10 / p90, images per
// second) and `finch bench-program` (a benchmarking aid: the fp32, fp16 or int8 program of any zoo
// model at any input size, from a checkpoint or a seeded initialization, int8 calibrated on
// random-normal images — for models with no trained weights or no dataset at that size, such as
// MobileNet v1 at 224×224). bench/int8_speed.sh and bench/torch_int8_peer.py drive both.
#pragma once

#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace finch::apps {

struct BenchOptions {
  std::string program;     // the .finch file
  int64_t batch = 1;       // replaces dim 0 of every declared input shape
  int threads = 1;
  int64_t iters = 50;      // timed runs
  int64_t warmup = 5;      // untimed runs first (caches, lazily packed weights)
  double max_seconds = 0;  // > 0: stop the warmup, then the timed runs, once each took this long
                           // (at least one run each)
  uint64_t seed = 1;       // the random inputs' generator
  bool reference_kernels = false;  // the scalar reference kernels instead of the optimized ones
  std::string sparse = "measured";  // runtime::SparseKernels by name (apps/lib/sparse_report.h)
  std::string json;
};

struct BenchProgramOptions {
  std::string model;                 // zoo name (default: the one the checkpoint names)
  std::string checkpoint;            // fp32 weights; empty: a seeded initialization
  std::string input_size = "1x28x28";  // C×H×W
  int64_t classes = 10;
  double width = 1.0;                // MobileNet v1/v2 width multiplier
  bool width_given = false;          // --width typed (else a --checkpoint's own width)
  bool cifar = false;                // the zoo's CIFAR variant (stride-1 stems), as train_cifar builds
  std::string precision = "int8";    // fp32 | fp16 | int8
  std::string qconfig = "int8";      // int8 only: quant/qconfig.h presets
  bool fuse = true;
  int64_t calib_batches = 4;         // random-normal calibration batches (int8)
  int64_t calib_batch_size = 8;
  uint64_t seed = 1;                 // initialization and calibration images
  int threads = 0;
  std::string out;
};

void add_bench_options(CLI::App& app, BenchOptions& o);
void add_bench_program_options(CLI::App& app, BenchProgramOptions& o);

int run_bench(const BenchOptions& o);
int run_bench_program(BenchProgramOptions o, bool model_given);

}  // namespace finch::apps
