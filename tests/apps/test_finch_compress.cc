// `finch compress` end to end on the toy Fashion-MNIST with a trained LeNet-5: a two-variant recipe
// (pruned + distilled + QAT'd to int8; factorized to fp32) writes each variant's files and the
// report, whose numbers match the files, `finch run` and a hand computation of L; a rerun reuses
// the variants; a failing step and Ctrl-C leave the finished variants intact.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "framework/results.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

using namespace finch;
using namespace finch::test;

namespace {

class FinchCompress : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    root_ = new std::filesystem::path(std::filesystem::temp_directory_path() /
                                      ("finch_compress_suite_" + std::to_string(::getpid())));
    const RunResult r = train_suite_model(*root_, "lenet5", 3, 200);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*root_);
    delete root_;
  }
  static std::string data() {
    return " --dataset fashion-mnist --data " + (*root_ / "fm").string() + " --threads 2 --batch-size 32";
  }
  static std::string checkpoint() { return (*root_ / "float/model.safetensors").string(); }
  std::string write_recipe(const std::string& text) {
    const std::string path = dir_ / "recipe.json";
    std::ofstream(path) << text;
    return path;
  }
  RunResult compress(const std::string& recipe, const std::string& out, const std::string& extra = "") {
    return run_program("finch", "compress --checkpoint " + checkpoint() + " --recipe " + recipe + data() +
                                    " --latency-rounds 2 --latency-iters 5 --out " + out + extra,
                       dir_.path);
  }
  static std::filesystem::path* root_;
  TempDir dir_{"finch_compress"};
};

std::filesystem::path* FinchCompress::root_ = nullptr;

const char* kTwoVariants = R"({"name": "two", "variants": [
  {"name": "pruned-qat", "steps": [
    {"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": 1, "distill": true},
    {"step": "qat", "epochs": 1},
    {"step": "compile", "precision": "int8"}]},
  {"name": "lowrank-ptq", "steps": [
    {"step": "lowrank", "compression": 2, "global": true},
    {"step": "ptq", "calib_batches": 4},
    {"step": "compile", "precision": "int8"}]}]})";

double rel(double x, double x0) { return (x - x0) / x0; }

}  // namespace

TEST_F(FinchCompress, TwoVariantsReportTheirFilesAndTheCriterion) {
  const std::string out = dir_ / "out";
  const RunResult r = compress(write_recipe(kTwoVariants), out);
  ASSERT_EQ(r.code, 0) << r.err << r.out;
  const nlohmann::json rep = read_json_file(out + "/report.json");
  EXPECT_EQ(rep["recipe"], "two");
  const auto& v = rep["variants"];
  ASSERT_EQ(v.size(), 3u);
  const char* names[] = {"baseline", "pruned-qat", "lowrank-ptq"};
  const char* precisions[] = {"fp32", "int8", "int8"};
  for (size_t i = 0; i < 3; ++i) {
    const std::string d = out + "/" + names[i];
    EXPECT_EQ(v[i]["name"], names[i]);
    ASSERT_EQ(v[i]["status"], "ok") << v[i].dump();
    EXPECT_EQ(v[i]["precision"], precisions[i]);
    EXPECT_EQ(v[i]["program_bytes"].get<int64_t>(), int64_t(std::filesystem::file_size(d + "/model.finch")));
    EXPECT_EQ(v[i]["checkpoint_bytes"].get<int64_t>(), int64_t(std::filesystem::file_size(d + "/model.safetensors")));
    EXPECT_TRUE(std::filesystem::exists(d + "/variant.json"));
    EXPECT_FALSE(std::filesystem::exists(d + ".partial"));
    EXPECT_GT(v[i]["latency_ms"].get<double>(), 0);
    EXPECT_LE(v[i]["latency_p10_ms"].get<double>(), v[i]["latency_ms"].get<double>());
    EXPECT_GE(v[i]["test_accuracy"].get<double>(), 0.0);
    EXPECT_LE(v[i]["test_accuracy"].get<double>(), 1.0);
  }
  // Parameters: the steps' own summaries agree; the pruned and factorized models are smaller.
  const nlohmann::json lr = read_json_file(out + "/lowrank-ptq/steps/01-lowrank/summary.json");
  EXPECT_EQ(v[2]["parameters"], lr["parameters_after"]);
  EXPECT_EQ(v[0]["parameters"], lr["parameters_before"]);
  EXPECT_LT(v[1]["parameters"].get<int64_t>(), v[0]["parameters"].get<int64_t>() / 2);
  EXPECT_LT(v[1]["program_bytes"].get<int64_t>(), v[0]["program_bytes"].get<int64_t>() / 4) << "half the channels, int8";
  EXPECT_TRUE(read_json_file(out + "/pruned-qat/steps/01-prune/summary.json").contains("distill"));
  // The accuracy is the program's own: finch run on the same test set says the same.
  const RunResult run = run_program("finch", "run " + out + "/lowrank-ptq/model.finch" + data() + " --json " +
                                                 (dir_ / "run.json"),
                                    dir_.path);
  ASSERT_EQ(run.code, 0) << run.err;
  EXPECT_DOUBLE_EQ(read_json_file(dir_ / "run.json")["accuracy"].get<double>(), v[2]["test_accuracy"].get<double>());
  // L by hand from the row's numbers: ΔS on program bytes, ΔT on the median latency, −ΔA.
  const auto& b = v[0];
  double best = 1e9;
  std::string best_name;
  for (size_t i = 0; i < 3; ++i) {
    const double ds = rel(v[i]["program_bytes"].get<double>(), b["program_bytes"].get<double>());
    const double dt = rel(v[i]["latency_ms"].get<double>(), b["latency_ms"].get<double>());
    const double da = rel(v[i]["test_accuracy"].get<double>(), b["test_accuracy"].get<double>());
    EXPECT_NEAR(v[i]["delta_size"].get<double>(), ds, 1e-12);
    EXPECT_NEAR(v[i]["L"].get<double>(), ds + dt - da, 1e-12) << names[i];
    if (ds + dt - da < best) best = ds + dt - da, best_name = names[i];
  }
  EXPECT_EQ(rep["recommended"], best_name);
  const std::string html = slurp(out + "/report.html");
  for (const char* n : names) EXPECT_NE(html.find(n), std::string::npos) << n;
  EXPECT_NE(html.find("recommended"), std::string::npos);
  // The QAT'd pruned model's simulation checkpoint carries its edits: finch verify rebuilds the
  // smaller layers with no flags, and the int8 program agrees with it.
  const SafetensorsFile q = load_safetensors(out + "/pruned-qat/qat_model.safetensors");
  ASSERT_TRUE(q.metadata.count("compress_edits"));
  EXPECT_NE(q.metadata.at("compress_edits").find("prune_channels"), std::string::npos);
  const RunResult ver = run_program("finch", "verify " + out + "/pruned-qat/model.finch --checkpoint " + out +
                                                 "/pruned-qat/qat_model.safetensors" + data(),
                                    dir_.path);
  ASSERT_EQ(ver.code, 0) << ver.err << ver.out;
  EXPECT_NE(ver.out.find("AGREE"), std::string::npos) << ver.out;
  // Likewise the .sim.safetensors finch quantize writes beside a factorized model's program.
  const std::string ptq = out + "/lowrank-ptq/steps/02-ptq/model.finch";
  EXPECT_NE(load_safetensors(ptq + ".sim.safetensors").metadata.at("compress_edits").find("lowrank"), std::string::npos);
  const RunResult ver2 = run_program("finch", "verify " + ptq + " --checkpoint " + ptq + ".sim.safetensors" + data(), dir_.path);
  ASSERT_EQ(ver2.code, 0) << ver2.err << ver2.out;
  EXPECT_NE(ver2.out.find("AGREE"), std::string::npos) << ver2.out;

  // A rerun reuses every finished variant, times them again and scores with other weights and
  // the seed's sign.
  const auto stamp = std::filesystem::last_write_time(out + "/pruned-qat/model.finch");
  const RunResult again = compress(write_recipe(kTwoVariants), out, " --weights 2,1,0.5 --seed-sign");
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("pruned-qat is complete from an earlier run; reused"), std::string::npos) << again.err;
  EXPECT_EQ(std::filesystem::last_write_time(out + "/pruned-qat/model.finch"), stamp);
  const nlohmann::json rep2 = read_json_file(out + "/report.json");
  EXPECT_TRUE(rep2["seed_sign"].get<bool>());
  for (const auto& x : rep2["variants"]) {
    EXPECT_EQ(x["test_accuracy"], v[&x - &rep2["variants"][0]]["test_accuracy"]);
    EXPECT_NEAR(x["L"].get<double>(), 2 * x["delta_size"].get<double>() + x["delta_time"].get<double>() +
                                          0.5 * x["delta_accuracy"].get<double>(), 1e-12);
  }
  // The same folder with other steps under a finished variant's name is refused, not overwritten.
  std::string changed = kTwoVariants;
  changed.replace(changed.find("\"compression\": 2"), 16, "\"compression\": 3");
  const RunResult clash = compress(write_recipe(changed), out);
  EXPECT_NE(clash.code, 0);
  EXPECT_NE(clash.err.find("lowrank-ptq exists but was not made by these steps"), std::string::npos) << clash.err;
  // So is the same recipe on another test set (its accuracies would not compare).
  const RunResult other = compress(write_recipe(kTwoVariants), out, " --limit-test 100");
  EXPECT_NE(other.code, 0);
  EXPECT_NE(other.err.find("baseline exists but was not made by these steps"), std::string::npos) << other.err;
}

TEST_F(FinchCompress, AFailingStepLeavesTheOtherVariantsAndSaysWhy) {
  const std::string out = dir_ / "out";
  const RunResult r = compress(write_recipe(R"([
    {"name": "a", "steps": [{"step": "compile", "precision": "fp32"}]},
    {"name": "bad", "steps": [{"step": "lowrank", "rank": 1.0}, {"step": "compile", "precision": "fp32"}]},
    {"name": "c", "steps": [{"step": "compile", "precision": "fp16"}]}])"),
                               out);
  EXPECT_EQ(r.code, 3) << r.err;
  const nlohmann::json rep = read_json_file(out + "/report.json");
  ASSERT_EQ(rep["variants"].size(), 4u);
  EXPECT_EQ(rep["variants"][1]["status"], "ok");
  EXPECT_EQ(rep["variants"][3]["status"], "ok");
  EXPECT_EQ(rep["variants"][3]["precision"], "fp16");
  const auto& bad = rep["variants"][2];
  EXPECT_EQ(bad["status"], "failed");
  EXPECT_EQ(bad["failed_step"], 1);
  EXPECT_EQ(bad["failed_kind"], "lowrank");
  EXPECT_NE(bad["error"].get<std::string>().find("no layer of lenet5 shrinks"), std::string::npos) << bad;
  EXPECT_FALSE(bad.contains("L"));
  EXPECT_FALSE(std::filesystem::exists(out + "/bad"));
  EXPECT_TRUE(std::filesystem::exists(out + "/bad.partial"));
  EXPECT_TRUE(std::filesystem::exists(out + "/a/model.finch"));
  EXPECT_NE(slurp(out + "/report.html").find("no layer of lenet5 shrinks"), std::string::npos);
  EXPECT_NE(r.out.find("bad"), std::string::npos);
  // Options are checked before any work: a bad recipe or weights write nothing.
  const std::string out2 = dir_ / "out2";
  for (const auto& [extra, text] : std::vector<std::pair<std::string, std::string>>{
           {" --weights 1,1", "--weights expects three numbers"}}) {
    const RunResult e = compress(write_recipe(R"([{"name": "a", "steps": [{"step": "compile", "precision": "fp32"}]}])"),
                                 out2, extra);
    EXPECT_NE(e.code, 0);
    EXPECT_NE(e.err.find(text), std::string::npos) << e.err;
  }
  // finch prune's own --distill needs fine-tuning to distil into.
  const RunResult p = run_program("finch", "prune --checkpoint " + checkpoint() + data() +
                                               " --structured --fine-tune-epochs 0 --distill --out " + out2,
                                  dir_.path);
  EXPECT_NE(p.code, 0);
  EXPECT_NE(p.err.find("finch prune: --distill needs --fine-tune-epochs 1 or more"), std::string::npos) << p.err;
  const RunResult e = compress("seed005", out2);
  EXPECT_NE(e.err.find("neither a recipe file nor a named recipe (quick, seed003-alg1"), std::string::npos) << e.err;
  EXPECT_FALSE(std::filesystem::exists(out2));
}

TEST_F(FinchCompress, CtrlCKeepsFinishedVariantsAndARerunCompletes) {
  const std::string out = dir_ / "out";
  const std::string recipe = write_recipe(R"([
    {"name": "a", "steps": [{"step": "compile", "precision": "fp32"}]},
    {"name": "slow", "steps": [{"step": "distill", "epochs": 1000}, {"step": "compile", "precision": "fp32"}]}])");
  // Started as its own process (fork + exec, SIGINT at its default: a shell's `&` would ignore it).
  const std::string cmd = "exec " + std::string(FINCH_BIN_DIR) + "/finch compress --checkpoint " + checkpoint() +
                          " --recipe " + recipe + data() + " --out " + out + " > " + (dir_ / "o.txt") + " 2> " +
                          (dir_ / "e.txt");
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::signal(SIGINT, SIG_DFL);
    ::execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!std::filesystem::exists(out + "/slow.partial/steps") && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  const bool started = std::filesystem::exists(out + "/slow.partial");
  ASSERT_EQ(::kill(pid, SIGINT), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(started) << slurp(dir_ / "e.txt");
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGINT) << "the command ended before the signal";
  // The finished variant and the report of what was done are whole; the interrupted one is not
  // presented as finished.
  EXPECT_TRUE(std::filesystem::exists(out + "/a/variant.json"));
  EXPECT_FALSE(std::filesystem::exists(out + "/slow"));
  const nlohmann::json rep = read_json_file(out + "/report.json");
  EXPECT_EQ(rep["variants"][1]["status"], "ok");
  EXPECT_EQ(rep["variants"][2]["status"], "pending");
  // A rerun (the slow step made short) reuses "a" and replaces the leftover .partial.
  const auto stamp = std::filesystem::last_write_time(out + "/a/model.finch");
  const RunResult r = compress(write_recipe(R"([
    {"name": "a", "steps": [{"step": "compile", "precision": "fp32"}]},
    {"name": "slow", "steps": [{"step": "distill", "epochs": 1}, {"step": "compile", "precision": "fp32"}]},
    {"name": "slow16", "steps": [{"step": "distill", "epochs": 1}, {"step": "compile", "precision": "fp16"}]}])"),
                               out);
  ASSERT_EQ(r.code, 0) << r.err;
  // The same leading steps are not trained twice: slow16 starts from slow's distilled model.
  EXPECT_TRUE(std::filesystem::exists(out + "/slow16/steps/01-distill/reused.json"));
  EXPECT_FALSE(std::filesystem::exists(out + "/slow16/steps/01-distill/model.safetensors"));
  EXPECT_EQ(slurp(out + "/slow16/model.safetensors"), slurp(out + "/slow/model.safetensors"));
  EXPECT_EQ(std::filesystem::last_write_time(out + "/a/model.finch"), stamp);
  EXPECT_TRUE(std::filesystem::exists(out + "/slow/model.finch"));
  EXPECT_FALSE(std::filesystem::exists(out + "/slow.partial"));
  EXPECT_EQ(read_json_file(out + "/report.json")["variants"][2]["status"], "ok");
}
