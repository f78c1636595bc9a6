// train_cifar under `mpirun -np 2`: the same weights as one process with the double batch, the
// summary's distributed block, --resume with another process count, and a mismatched launch.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/dist.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

std::string why_no_mpirun() {
  if (!dist::built_with_mpi()) return "finch was built without MPI (apt-get install libopenmpi-dev openmpi-bin)";
#ifndef FINCH_MPIEXEC
  return "CMake found MPI but no mpiexec/mpirun (apt-get install openmpi-bin)";
#else
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return "already running under mpirun";
  return "";
#endif
}

// `mpirun -np 2 train_cifar ARGS` (or an MPMD line when `args` holds " : "), output captured.
RunResult mpirun(const std::string& args, const fs::path& dir) {
#ifdef FINCH_MPIEXEC
  // As root OpenMPI needs --allow-run-as-root; --oversubscribe for machines with fewer free
  // slots; `timeout` turns a hang into a failure.
  const std::string o = (dir / "mpi_stdout.txt").string(), e = (dir / "mpi_stderr.txt").string();
  const std::string cmd = std::string("timeout 300 ") + FINCH_MPIEXEC + " --allow-run-as-root --oversubscribe " +
                          args + " > " + o + " 2> " + e;
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(o), slurp(e)};
#else
  (void)args;
  (void)dir;
  return {-1, "", ""};
#endif
}

class TrainMpi : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const std::string why = why_no_mpirun(); !why.empty()) GTEST_SKIP() << why;
    root_ = fs::temp_directory_path() / ("finch_train_mpi_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(root_);
    fs::create_directories(root_);
    write_fashion(root_ / "fm", 256, 64);
  }
  void TearDown() override {
    if (!root_.empty()) fs::remove_all(root_);
  }
  // lenet5 has neither BatchNorm nor dropout, so 2 × B is 1 × 2B up to rounding (docs/distributed.md).
  std::string common(const std::string& lr = "0.05") const {
    return std::string(FINCH_BIN_DIR) + "/train_cifar --model lenet5 --dataset fashion-mnist --data " +
           (root_ / "fm").string() + " --threads 1 --workers 0 --seed 3 --epochs 2 --lr " + lr;
  }
  fs::path root_;
};

}  // namespace

TEST_F(TrainMpi, TwoProcessesMatchOneWithTheDoubleBatchAndResumeWithOne) {
  const fs::path two = root_ / "two", one = root_ / "one";
  const RunResult r2 = mpirun("-np 2 " + common() + " --batch-size 16 --stop-after 1 --out " + two.string(), root_);
  ASSERT_EQ(r2.code, 0) << r2.err;
  const nlohmann::json s = nlohmann::json::parse(slurp((two / "summary.json").string()));
  const auto& d = s["distributed"];
  EXPECT_EQ(d["world_size"], 2);
  EXPECT_EQ(d["per_rank_batch"], 16);
  EXPECT_EQ(d["effective_batch"], 32);
  EXPECT_EQ(d["lr"], 0.05);
  EXPECT_EQ(d["steps"], 8);  // 128 samples per rank / 16
  EXPECT_GT(d["gradient_bytes_per_step"].get<int64_t>(), 0);
  EXPECT_EQ(s["epochs_done"], 1);

  const RunResult r1 = run_program("train_cifar", common().substr(common().find(" --model")) +
                                                      " --batch-size 32 --stop-after 1 --out " + one.string(), root_);
  ASSERT_EQ(r1.code, 0) << r1.err;
  const SafetensorsFile a = load_safetensors((two / "model.safetensors").string());
  const SafetensorsFile b = load_safetensors((one / "model.safetensors").string());
  // 8 SGD steps; the gradients differ only in summation order (test_distributed.cc explains).
  double max_diff = 0;
  for (const auto& [name, t] : a.tensors) {
    const auto x = t.to_vector<float>(), y = b.at(name).to_vector<float>();
    ASSERT_EQ(x.size(), y.size()) << name;
    for (size_t i = 0; i < x.size(); ++i) max_diff = std::max(max_diff, double(std::fabs(x[i] - y[i])));
  }
  EXPECT_LT(max_diff, 1e-5);

  // The 2-process checkpoint resumes in 1 process (batch 32: the same effective batch).
  const RunResult rr = run_program("train_cifar", common().substr(common().find(" --model")) +
                                                      " --batch-size 32 --resume " + (two / "checkpoint.safetensors").string() +
                                                      " --out " + two.string(), root_);
  ASSERT_EQ(rr.code, 0) << rr.err;
  const nlohmann::json s2 = nlohmann::json::parse(slurp((two / "summary.json").string()));
  EXPECT_EQ(s2["epochs_done"], 2);
  EXPECT_EQ(s2["distributed"]["world_size"], 1);
}

TEST_F(TrainMpi, AMismatchedLaunchNamesTheOption) {
  const std::string out = " --batch-size 16 --out " + (root_ / "x").string();
  const RunResult r = mpirun("-np 1 " + common("0.1") + out + " : -np 1 " + common("0.2") + out, root_);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("rank 1 has --lr = 0.2 but rank 0 has --lr = 0.1"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(fs::exists(root_ / "x" / "checkpoint.safetensors"));
}
