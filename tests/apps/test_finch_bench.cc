// finch bench-program and finch bench end to end: untrained zoo models turned into fp32 / fp16 /
// int8 programs (int8 calibrated on random-normal images), timed on random inputs with the JSON
// report checked field by field, and one clear sentence with a non-zero exit for bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>

#include "framework/atomic_file.h"
#include "apps/lib/checkpoint.h"
#include "framework/results.h"
#include "models/factory.h"
#include "runtime/program_file.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

class FinchBench : public ::testing::Test {
 protected:
  TempDir dir_{"finch_bench"};

  // Builds a program with bench-program (asserting success) and returns its path.
  std::string make(const std::string& name, const std::string& args) {
    const std::string prog = dir_ / (name + ".finch");
    const RunResult r = run_program("finch", "bench-program " + args + " --out " + prog, dir_.path);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("benchmarking aid"), std::string::npos) << r.out;
    return prog;
  }

  // finch bench's JSON for `prog`, asserting success.
  nlohmann::json bench(const std::string& prog, const std::string& args) {
    const std::string json = dir_ / "bench.json";
    const RunResult r = run_program("finch", "bench " + prog + " " + args + " --json " + json, dir_.path);
    EXPECT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("median"), std::string::npos) << r.out;
    return read_json_file(json);
  }
};

// One line on stderr, naming what was wrong.
void expect_refused(const RunResult& r, const std::string& needle) {
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace

TEST_F(FinchBench, ProgramsOfEachPrecisionAreTimedAndReported) {
  for (const std::string precision : {"fp32", "fp16", "int8"}) {
    SCOPED_TRACE(precision);
    const std::string prog = make("lenet5-" + precision, "--model lenet5 --input-size 1x28x28 --precision " + precision);
    const nlohmann::json j = bench(prog, "--batch 3 --threads 1 --iters 4 --warmup 1");
    EXPECT_EQ(j["program"], prog);
    EXPECT_EQ(j["kind"], precision);
    EXPECT_EQ(j["model"], "lenet5");
    EXPECT_EQ(j["batch"], 3);
    EXPECT_EQ(j["threads"], 1);
    EXPECT_EQ(j["iters"], 4);
    EXPECT_EQ(j["latency_ms"].size(), 4u);
    const double median = j["latency_ms_median"], p10 = j["latency_ms_p10"], p90 = j["latency_ms_p90"];
    EXPECT_GT(p10, 0.0);
    EXPECT_LE(p10, median);
    EXPECT_LE(median, p90);
    EXPECT_NEAR(j["images_per_second"].get<double>(), 3 * 1000.0 / median, 1e-6 * 3000.0 / median);
    EXPECT_EQ(j["file_bytes"].get<int64_t>(), int64_t(std::filesystem::file_size(prog)));
  }
}

// Any zoo model at any input size: a width-0.25 MobileNet v1 at 3×40×40 (the 224×224 α = 0.5
// benchmark model, shrunk to test time), int8 and on two threads.
TEST_F(FinchBench, MobileNetV1AtAnotherSizeAndWidth) {
  const std::string prog = make("mnv1", "--model mobilenet_v1 --width 0.25 --input-size 3x40x40 --classes 5 "
                                        "--calib-batches 2 --calib-batch-size 2");
  const nlohmann::json j = bench(prog, "--batch 1 --threads 2 --iters 2 --warmup 0");
  EXPECT_EQ(j["kind"], "int8");
  EXPECT_EQ(j["model"], "mobilenet_v1");
  EXPECT_EQ(j["threads"], 2);
}

// With --checkpoint the program carries those weights (here: a seeded LeNet-5 saved as
// model.safetensors names it), and the model comes from the file's metadata.
TEST_F(FinchBench, ProgramFromACheckpoint) {
  Generator gen(7);
  models::CreateOptions co;
  co.gen = &gen;
  const nn::ModulePtr m = models::create("lenet5", 1, 10, co);
  const std::string weights = dir_ / "model.safetensors";
  apps::DataOptions meta;  // model lenet5, dataset fashion-mnist, width 1, stem cifar
  apps::save_weights(weights, *m, meta);
  const std::string prog = make("ckpt", "--checkpoint " + weights + " --precision fp32");
  const runtime::Graph g = runtime::read_program(prog);
  EXPECT_EQ(g.meta["model"], "lenet5");
  EXPECT_EQ(g.meta["benchmark_aid"]["weights"], weights);
  EXPECT_EQ(bench(prog, "--iters 2 --warmup 0")["kind"], "fp32");
  expect_refused(run_program("finch", "bench-program --model resnet20 --checkpoint " + weights + " --out " +
                                               (dir_ / "y.finch"), dir_.path),
                      "holds a lenet5 but --model is resnet20");
}

// --max-seconds ends the warmup and the timed runs early (the reference int8 kernels are slow); the report
// counts the runs actually timed.
TEST_F(FinchBench, TimeBudgetEndsTheRunEarly) {
  const std::string prog = make("budget", "--model lenet5 --precision int8 --calib-batches 1");
  const nlohmann::json j = bench(prog, "--iters 100000 --warmup 100000 --max-seconds 0.000001");
  EXPECT_EQ(j["iters"], 1);
  EXPECT_EQ(j["warmup"], 1);
  EXPECT_EQ(j["latency_ms"].size(), 1u);
}

TEST_F(FinchBench, BadInputGetsOneSentence) {
  const std::string missing = dir_ / "nope.finch";
  expect_refused(run_program("finch", "bench " + missing, dir_.path), missing);

  const std::string text = dir_ / "text.finch";
  write_file_atomically(text, "not a program\n");
  expect_refused(run_program("finch", "bench " + text, dir_.path), text);

  const std::string prog = make("tiny", "--model lenet5 --precision fp32");
  expect_refused(run_program("finch", "bench " + prog + " --batch 0", dir_.path), "--batch must be at least 1");
  expect_refused(run_program("finch", "bench " + prog + " --iters 0", dir_.path), "--iters must be at least 1");
  // Before: a bare std::bad_alloc. The batch is checked against the activation limit first.
  expect_refused(run_program("finch", "bench " + prog + " --batch 1000000000", dir_.path),
                      "a batch of 1000000000 needs");
  // A meta field of the wrong type (before: a json type_error reached the user).
  runtime::Graph g = runtime::read_program(prog);
  g.meta["precision"] = 5;
  const std::string bad = dir_ / "bad-meta.finch";
  runtime::write_program(g, bad);
  expect_refused(run_program("finch", "bench " + bad, dir_.path), "meta.precision is 5; expected a string");

  const std::string out = " --out " + dir_ / "x.finch";
  expect_refused(run_program("finch", "bench-program --model resnet20 --input-size 3x32" + out, dir_.path),
                      "3x32");
  expect_refused(run_program("finch", "bench-program --model resnet20 --width 0.5" + out, dir_.path),
                      "--width");
  expect_refused(run_program("finch", "bench-program --input-size 1x28x28" + out, dir_.path), "--model");
  expect_refused(
      run_program("finch", "bench-program --model lenet5 --checkpoint " + missing + out, dir_.path), missing);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.finch"));
}
