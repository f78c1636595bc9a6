// The program commands end to end on a tiny generated Fashion-MNIST (IDX): finch compile / run /
// inspect / verify, finch quantize --out X.finch, the standalone finch_run on PGM images, and one
// clear sentence with a non-zero exit for each kind of bad input.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "framework/results.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"
#include "tests/runtime/program_bytes.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

// One LeNet-5 trained for the whole suite (seconds), without augmentation so the toy classes'
// patches stay where they are.
class FinchProgram : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                      ("finch_program_suite_" + std::to_string(::getpid())));
    const RunResult r = train_suite_model(*root_, "lenet5", 3, 100);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }
  static std::string data() { return "--dataset fashion-mnist --data " + (*root_ / "fm").string() + " --threads 2"; }
  static std::string checkpoint() { return (*root_ / "float/model.safetensors").string(); }
  static double float_accuracy() {
    return read_json_file(*root_ / "float/summary.json")["test_accuracy"].get<double>();
  }
  static std::filesystem::path* root_;
  TempDir dir_{"finch_program"};
};

std::filesystem::path* FinchProgram::root_ = nullptr;

// The `predicted` column of a predictions CSV (index, label, predicted, logits...).
std::vector<int64_t> predicted_column(const std::string& csv) {
  std::istringstream in(slurp(csv));
  std::string line;
  std::getline(in, line);  // header
  std::vector<int64_t> p;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string cell;
    for (int k = 0; k < 3; ++k) std::getline(row, cell, ',');
    p.push_back(std::stoll(cell));
  }
  return p;
}

// The toy test images exactly as write_fashion generated them, as binary PGM files.
std::vector<std::string> write_test_pgms(const std::filesystem::path& dir, int64_t n) {
  const auto y = toy_labels(100);
  const Tensor x = toy_images(100, 1, 28, 28, y, 2u);
  std::vector<std::string> files;
  for (int64_t i = 0; i < n; ++i) {
    const std::string f = (dir / ("img" + std::to_string(i) + ".pgm")).string();
    std::ofstream o(f, std::ios::binary);
    o << "P5\n# toy test image\n28 28\n255\n";
    o.write(reinterpret_cast<const char*>(x.data<uint8_t>() + i * 784), 784);
    files.push_back(f);
  }
  return files;
}

// The class index column of finch_run's output lines (file, class, name, score).
std::vector<int64_t> finch_run_classes(const std::string& out) {
  std::istringstream in(out);
  std::string line;
  std::vector<int64_t> c;
  while (std::getline(in, line)) {
    std::istringstream row(line);
    std::string file, cls;
    if (std::getline(row, file, '\t') && std::getline(row, cls, '\t')) c.push_back(std::stoll(cls));
  }
  return c;
}

}  // namespace

TEST_F(FinchProgram, CompileRunInspectAndTheStandaloneRunner) {
  const std::string prog = dir_ / "f.finch";
  RunResult r = run_program("finch", "compile --checkpoint " + checkpoint() + " " + data() + " --out " + prog, dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("fp32 program"), std::string::npos) << r.out;

  // The fp32 program classifies the test set as the model does.
  r = run_program("finch", "run " + prog + " " + data() + " --latency-images 3 --profile --json " + (dir_ / "run.json") +
                               " --predictions " + (dir_ / "pred.csv"),
                  dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json j = read_json_file(dir_ / "run.json");
  EXPECT_NEAR(j["accuracy"].get<double>(), float_accuracy(), 1.0 / 100 + 1e-9);
  EXPECT_GE(j["accuracy"].get<double>(), 0.9);
  EXPECT_EQ(j["images"].get<int64_t>(), 100);
  EXPECT_EQ(j["precision"], "fp32");
  EXPECT_NE(r.out.find("per class:"), std::string::npos);
  EXPECT_NE(r.out.find("share"), std::string::npos) << "the --profile table";

  // inspect: the table and a Graphviz file.
  r = run_program("finch", "inspect " + prog + " --dot " + (dir_ / "g.dot"), dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("linear"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("conv2d"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(dir_ / "g.dot").rfind("digraph", 0), 0u);

  // finch_run on PGM images of the same test images predicts what finch run predicted.
  const auto pgms = write_test_pgms(dir_.path, 8);
  std::string args = prog;
  for (const auto& f : pgms) args += " " + f;
  r = run_program("finch_run", args + " --logits " + (dir_ / "logits.csv") + " --bench 3", dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto want = predicted_column(dir_ / "pred.csv");
  const auto got = finch_run_classes(r.out);
  ASSERT_EQ(got.size(), 8u) << r.out;
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "image " << i;
  EXPECT_NE(r.out.find("batch-1 latency: median"), std::string::npos);
  std::istringstream logits(slurp(dir_ / "logits.csv"));
  std::string line;
  int rows = 0;
  while (std::getline(logits, line)) ++rows;
  EXPECT_EQ(rows, 8);

  // Without images it describes the program.
  r = run_program("finch_run", prog, dir_.path);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("lenet5 fp32 program"), std::string::npos) << r.out;
}

TEST_F(FinchProgram, QuantizedProgramsAgreeWithTheirSimulatedModels) {
  for (const std::string mode : {"static", "dynamic", "fp16"}) {
    const std::string prog = dir_ / (mode + ".finch");
    RunResult r = run_program("finch", "quantize --checkpoint " + checkpoint() + " " + data() + " --mode " + mode +
                                           " --calib-batches 4 --latency-images 3 --out " + prog + " --report " +
                                           (dir_ / (mode + ".json")),
                              dir_.path);
    ASSERT_EQ(r.code, 0) << mode << ": " << r.err;
    const nlohmann::json rep = read_json_file(dir_ / (mode + ".json"));
    const double sim_accuracy = rep["variants"][1]["accuracy"].get<double>();
    // quantize evaluated the program too: same accuracy, same prediction on every image.
    ASSERT_TRUE(rep.contains("program")) << mode;
    EXPECT_EQ(rep["program"]["accuracy"].get<double>(), sim_accuracy) << mode;
    EXPECT_EQ(rep["program"]["same_predictions"].get<int64_t>(), 100) << mode;
    EXPECT_EQ(rep["program"]["size_bytes"].get<int64_t>(), int64_t(std::filesystem::file_size(prog)));

    // The program's accuracy is the simulated model's, exactly.
    r = run_program("finch", "run " + prog + " " + data() + " --latency-images 2 --json " + (dir_ / "r.json"), dir_.path);
    ASSERT_EQ(r.code, 0) << mode << ": " << r.err;
    EXPECT_EQ(read_json_file(dir_ / "r.json")["accuracy"].get<double>(), sim_accuracy) << mode;

    // verify: every value of the program equals the simulated model's, exit 0.
    r = run_program("finch", "verify " + prog + " --checkpoint " + prog + ".sim.safetensors " + data() + " --json " +
                                 (dir_ / "v.json"),
                    dir_.path);
    EXPECT_EQ(r.code, 0) << mode << ": " << r.out << r.err;
    EXPECT_NE(r.out.find("-> AGREE"), std::string::npos) << r.out;
    const nlohmann::json v = read_json_file(dir_ / "v.json");
    EXPECT_TRUE(v["agree"].get<bool>());
    EXPECT_EQ(v["images"].get<int64_t>(), 100);
    EXPECT_GT(v["layers"].size(), 3u);
  }
  // int8 weights: the program is about a quarter of the fp32 checkpoint; fp16 about half.
  const double fp32 = double(std::filesystem::file_size(checkpoint()));
  EXPECT_LT(double(std::filesystem::file_size(dir_ / "static.finch")) / fp32, 0.30);
  EXPECT_LT(double(std::filesystem::file_size(dir_ / "fp16.finch")) / fp32, 0.52);
}

TEST_F(FinchProgram, VerifyFindsADifferentModel) {
  // A program checked against another model's simulation state must not agree.
  const std::string prog = dir_ / "q.finch";
  ASSERT_EQ(run_program("finch", "quantize --checkpoint " + checkpoint() + " " + data() +
                                     " --mode static --calib-batches 4 --latency-images 1 --out " + prog,
                        dir_.path)
                .code,
            0);
  const std::string other = dir_ / "other.finch";
  ASSERT_EQ(run_program("finch", "quantize --checkpoint " + checkpoint() + " " + data() +
                                     " --mode static --observer percentile --calib-batches 2 --latency-images 1 --out " +
                                     other,
                        dir_.path)
                .code,
            0);
  const RunResult r =
      run_program("finch", "verify " + prog + " --checkpoint " + other + ".sim.safetensors " + data(), dir_.path);
  EXPECT_EQ(r.code, 1) << r.out << r.err;
  EXPECT_NE(r.out.find("-> DIFFER"), std::string::npos) << r.out;
}

TEST_F(FinchProgram, BadInputIsOneClearSentence) {
  const std::string prog = dir_ / "f.finch";
  ASSERT_EQ(run_program("finch", "compile --checkpoint " + checkpoint() + " " + data() + " --out " + prog, dir_.path).code, 0);
  auto fails = [&](const std::string& program, const std::string& args, const std::string& expect) {
    const RunResult r = run_program(program, args, dir_.path);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.err.find(expect), std::string::npos) << args << "\n" << r.err;
    EXPECT_LE(std::count(r.err.begin(), r.err.end(), '\n'), 2) << "one sentence: " << r.err;
  };
  // Damaged files name themselves.
  const std::string bytes = slurp(prog);
  { std::ofstream(dir_ / "trunc.finch", std::ios::binary) << bytes.substr(0, bytes.size() / 2); }
  { std::ofstream(dir_ / "text.finch", std::ios::binary) << "this is not a program\n"; }
  std::string flipped = bytes;
  flipped[flipped.size() / 2] ^= 0x10;
  { std::ofstream(dir_ / "flip.finch", std::ios::binary) << flipped; }
  for (const char* f : {"trunc.finch", "text.finch", "flip.finch"}) {
    fails("finch", "run " + (dir_ / f) + " " + data(), f);
    fails("finch", "inspect " + (dir_ / f), f);
    fails("finch_run", dir_ / f, f);
  }
  fails("finch", "run " + (dir_ / "missing.finch"), "missing.finch");
  // verify needs a quantized program and a simulation state.
  fails("finch", "verify " + prog + " --checkpoint " + checkpoint() + " " + data(), "is a fp32 program");
  // compile: a checkpoint of another model.
  fails("finch", "compile --model resnet20 --checkpoint " + checkpoint() + " " + data() + " --out " + (dir_ / "x.finch"),
        "holds a lenet5 but --model is resnet20");
  // finch_run: an image of the wrong size, a truncated image, a raw file of the wrong length.
  { std::ofstream(dir_ / "small.pgm", std::ios::binary) << "P5 4 4 255\n" << std::string(16, '\0'); }
  fails("finch_run", prog + " " + (dir_ / "small.pgm"), "expects 1x28x28");
  { std::ofstream(dir_ / "cut.pgm", std::ios::binary) << "P5 28 28 255\n" << std::string(100, '\0'); }
  fails("finch_run", prog + " " + (dir_ / "cut.pgm"), "truncated");
  { std::ofstream(dir_ / "x.f32", std::ios::binary) << std::string(10, '\0'); }
  fails("finch_run", prog + " --raw " + (dir_ / "x.f32"), "expected a multiple of 3136 bytes");
  fails("finch_run", prog + " --frobnicate", "unknown option --frobnicate");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "x.finch"));
}

// Programs edited behind a valid checksum (tests/runtime/program_bytes.h): every runner refuses
// them at load with the verifier's sentence, and finch inspect lists every problem and exits 1
// (before: inspect listed them, finch_run printed scores computed with a std of 0 and `nan`).
TEST_F(FinchProgram, HostileProgramsAreRefusedByEveryRunnerAndInspectSaysWhy) {
  const std::string prog = dir_ / "f.finch";
  ASSERT_EQ(run_program("finch", "compile --checkpoint " + checkpoint() + " " + data() + " --out " + prog, dir_.path).code, 0);
  const std::string bytes = slurp(prog);
  ProgramParts p = split_program(std::vector<uint8_t>(bytes.begin(), bytes.end()));
  nlohmann::ordered_json doc = nlohmann::ordered_json::parse(p.json);
  doc["meta"]["std"] = {0.0};
  doc["nodes"][0]["attrs"]["stride"] = {int64_t(1) << 62, 1};
  p.json = doc.dump();
  const std::vector<uint8_t> f = join_program(p);
  const std::string bad = dir_ / "bad.finch";
  { std::ofstream(bad, std::ios::binary).write(reinterpret_cast<const char*>(f.data()), std::streamsize(f.size())); }

  RunResult r = run_program("finch", "inspect " + bad, dir_.path);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("bad.finch: every runner refuses this program; 2 problems:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("attribute 'stride' is [4611686018427387904,1]; expected a list of 2 integers in [1, 65536]"),
            std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bad.finch: meta.std[0] is 0.0; expected a finite number greater than 0"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
  for (const std::string& cmd : {"finch_run " + bad, "finch run " + bad + " " + data()}) {
    const size_t sp = cmd.find(' ');
    r = run_program(cmd.substr(0, sp), cmd.substr(sp + 1), dir_.path);
    EXPECT_NE(r.code, 0) << cmd;
    EXPECT_NE(r.err.find("attribute 'stride' is [4611686018427387904,1]"), std::string::npos) << cmd << "\n" << r.err;
  }
  // finch_run --max-memory: the limit of the activation memory per image.
  r = run_program("finch_run", prog + " --max-memory 10000", dir_.path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("over the limit of 10000 bytes"), std::string::npos) << r.err;
  r = run_program("finch_run", prog + " --max-memory 0", dir_.path);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("--max-memory: expected a positive number of bytes"), std::string::npos) << r.err;
  EXPECT_EQ(run_program("finch_run", prog + " --max-memory 100000000", dir_.path).code, 0);
}

// A checkpoint whose weights hold NaN (a diverged run) is refused by compile and quantize naming
// the checkpoint and the tensor, and no program is written (before: a program printing `nan`).
TEST_F(FinchProgram, NonFiniteCheckpointIsRefusedByCompileAndQuantize) {
  SafetensorsFile ck = load_safetensors(checkpoint());
  NamedTensors t;
  for (auto& [name, v] : ck.tensors) {
    Tensor c = v.contiguous().clone();
    if (name == "conv1.weight") c.data<float>()[3] = std::numeric_limits<float>::quiet_NaN();
    t.emplace_back(name, c);
  }
  const std::string nan_ck = dir_ / "nan.safetensors";
  save_safetensors(nan_ck, t, ck.metadata);
  for (const std::string& cmd : {std::string("compile"), std::string("quantize --mode dynamic")}) {
    const std::string out = dir_ / "nan.finch";
    const RunResult r = run_program("finch", cmd + " --checkpoint " + nan_ck + " " + data() + " --out " + out, dir_.path);
    EXPECT_NE(r.code, 0) << cmd;
    EXPECT_NE(r.err.find(nan_ck + ": weight 'conv1.weight' holds a NaN or an infinity"),
              std::string::npos)
        << cmd << "\n" << r.err;
    EXPECT_FALSE(std::filesystem::exists(out)) << cmd;
  }
}
