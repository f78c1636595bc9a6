// `finch lowrank` end to end on the toy Fashion-MNIST: a trained LeNet-5 factorized to half its
// parameters and fine-tuned with distillation; the summary's keys; the weight file records its
// edits and loads again with no flags (its accuracy read back equals the one reported); and one
// sentence for each bad combination of options.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>

#include "framework/results.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

class FinchLowRank : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                      ("finch_lowrank_suite_" + std::to_string(::getpid())));
    const RunResult r = train_suite_model(*root_, "lenet5", 3, 200);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }
  static std::string data() { return " --dataset fashion-mnist --data " + (*root_ / "fm").string() + " --threads 2"; }
  static std::string checkpoint() { return (*root_ / "float/model.safetensors").string(); }
  static std::filesystem::path* root_;
  TempDir dir_{"finch_lowrank"};
};

std::filesystem::path* FinchLowRank::root_ = nullptr;

}  // namespace

TEST_F(FinchLowRank, FactorizesFineTunesAndTheFileLoadsAgain) {
  const std::string out = dir_ / "half";
  const RunResult r = run_program("finch", "lowrank --checkpoint " + checkpoint() + data() +
                                               " --compression 2 --global --fine-tune-epochs 1 --distill --out " + out,
                                  dir_.path);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const nlohmann::json s = read_json_file(out + "/summary.json");
  for (const char* k : {"parameters_before", "parameters_after", "test_accuracy_before", "test_accuracy", "layers"})
    EXPECT_TRUE(s.contains(k)) << k;
  EXPECT_LE(s["parameters_after"].get<double>(), s["parameters_before"].get<double>() / 2);
  EXPECT_GE(s["test_accuracy"].get<double>(), 0.0);
  EXPECT_LE(s["test_accuracy"].get<double>(), 1.0);
  const SafetensorsFile f = load_safetensors(out + "/model.safetensors");
  const nlohmann::json edits = nlohmann::json::parse(f.metadata.at("compress_edits"));
  ASSERT_GE(edits.size(), 1u);
  EXPECT_EQ(edits[0]["kind"], "lowrank");
  // Loaded again with no flags (the edits rebuild the shapes), it has the accuracy reported.
  const std::string again = dir_ / "again";
  const RunResult r2 = run_program("finch", "lowrank --checkpoint " + out + "/model.safetensors" + data() +
                                                " --energy 0.5 --out " + again,
                                   dir_.path);
  ASSERT_EQ(r2.code, 0) << r2.err << r2.out;
  const nlohmann::json s2 = read_json_file(again + "/summary.json");
  EXPECT_EQ(s2["test_accuracy_before"], s["test_accuracy"]);
  EXPECT_EQ(s2["parameters_before"], s["parameters_after"]);
  EXPECT_GT(nlohmann::json::parse(load_safetensors(again + "/model.safetensors").metadata.at("compress_edits")).size(),
            edits.size())
      << "the new edits follow the file's own";
}

TEST_F(FinchLowRank, BadOptionsAreOneSentence) {
  const std::string out = " --out " + std::string(dir_ / "x");
  for (const auto& [args, text] : std::vector<std::pair<std::string, std::string>>{
           {" --rank-fraction 0.5 --energy 0.9", "give exactly one of --rank-fraction, --energy and --compression"},
           {"", "give exactly one of"},
           {" --energy 0.9 --global", "--global goes with --compression"},
           {" --rank-fraction 0.5 --distill", "--distill needs --fine-tune-epochs 1 or more"},
           {" --rank-fraction 1.5", "--rank-fraction"},
           {" --compression 0.5", "--compression"},
           {" --rank-fraction 1", "no layer of lenet5 shrinks"},
           {" --compression 1000 --global", "out of reach"}}) {
    const RunResult r = run_program("finch", "lowrank --checkpoint " + checkpoint() + data() + args + out, dir_.path);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_NE(r.err.find(text), std::string::npos) << args << ": " << r.err;
  }
}
