// train_cifar --width: a MobileNet v1 trained at α = 0.25 records its width in every file it
// writes, and finch compile / quantize / run rebuild that network without being told; a bad
// --width is one sentence and a non-zero exit.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "framework/results.h"
#include "framework/safetensors.h"
#include "runtime/program_file.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

// One tiny α = 0.25 MobileNet v1 (1 epoch on 128 toy Fashion-MNIST images) for the suite.
class TrainWidth : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                      ("finch_width_suite_" + std::to_string(::getpid())));
    std::filesystem::remove_all(*root_);
    std::filesystem::create_directories(*root_);
    write_fashion(*root_ / "fm", 128, 40);
    const RunResult r = run("--model mobilenet_v1 --width 0.25 " + data() +
                                " --epochs 1 --no-augment --batch-size 32 --seed 1 --out " + (*root_ / "float").string(),
                            *root_);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }
  static std::string data() { return "--dataset fashion-mnist --data " + (*root_ / "fm").string() + " --threads 2"; }
  static std::string weights() { return (*root_ / "float/model.safetensors").string(); }
  static std::filesystem::path* root_;
  TempDir dir_{"finch_width"};
};
std::filesystem::path* TrainWidth::root_ = nullptr;

TEST_F(TrainWidth, FilesRecordTheWidth) {
  for (const char* f : {"model.safetensors", "best.safetensors", "checkpoint.safetensors"}) {
    const SafetensorsFile st = load_safetensors((*root_ / "float" / f).string());
    ASSERT_TRUE(st.metadata.count("width")) << f;
    EXPECT_EQ(std::stod(st.metadata.at("width")), 0.25) << f;
  }
  // α = 0.25: the stem has make_divisible(32 · 0.25) = 8 output channels, not 32.
  const SafetensorsFile st = load_safetensors(weights());
  EXPECT_EQ(st.at("features.0.0.weight").size(0), 8);
  EXPECT_EQ(read_json_file(*root_ / "float/summary.json")["width"].get<double>(), 0.25);
}

TEST_F(TrainWidth, CompileAndRunRebuildTheNetworkFromTheCheckpoint) {
  const std::string prog = (dir_ / "fp32.finch");
  RunResult r = run_program("finch", "compile --checkpoint " + weights() + " " + data() + " --out " + prog, dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(runtime::read_program(prog).meta["width"].get<double>(), 0.25);
  r = run_program("finch", "run " + prog + " " + data() + " --latency-images 2 --json " + (dir_ / "run.json"), dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_json_file(dir_ / "run.json")["images"].get<int64_t>(), 40);
}

TEST_F(TrainWidth, QuantizeRebuildsTheNetworkFromATrainingCheckpoint) {
  const std::string prog = (dir_ / "int8.finch");
  const RunResult r = run_program("finch", "quantize --checkpoint " + (*root_ / "float/checkpoint.safetensors").string() +
                                               " " + data() + " --qconfig int8 --calib-batches 2 --latency-images 2 --out " +
                                               prog,
                                  dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const runtime::Graph g = runtime::read_program(prog);
  EXPECT_EQ(g.meta["width"].get<double>(), 0.25);
  EXPECT_EQ(g.meta["model"].get<std::string>(), "mobilenet_v1");
}

TEST_F(TrainWidth, AWidthThatContradictsTheCheckpointIsOneSentence) {
  const RunResult r = run_program("finch", "compile --checkpoint " + weights() + " " + data() + " --width 0.5 --out " +
                                               (dir_ / "x.finch"),
                                  dir_.path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("width 0.25 but --width is 0.5"), std::string::npos) << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.finch"));
}

TEST_F(TrainWidth, BadWidthIsOneSentenceAndNonZeroExit) {
  const std::string base = data() + " --epochs 1 --out " + (dir_ / "bad");
  const struct {
    std::string args, says;
  } cases[] = {
      {"--model resnet20 --width 0.5", "--width applies to mobilenet_v1 and mobilenetv2 only, not resnet20"},
      {"--model mobilenet_v1 --width 0", "--width must be a multiplier in (0, 4]"},
      {"--model mobilenetv2 --width -1", "--width must be a multiplier in (0, 4]"},
      {"--model mobilenet_v1 --width 9", "--width must be a multiplier in (0, 4]"},
      {"--model mobilenet_v1 --width half", "--width"},
  };
  for (const auto& c : cases) {
    const RunResult r = run(c.args + " " + base, dir_.path);
    EXPECT_NE(r.code, 0) << c.args;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << c.args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << c.args << ": " << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "bad")) << c.args;
  }
}

}  // namespace
