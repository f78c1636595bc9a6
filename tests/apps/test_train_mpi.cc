// train_cifar under `mpirun -np 2`: the same weights as one process with the double batch (with
// synchronized BatchNorm for ResNet-20), the summary's distributed block, --resume with another
// process count, a mismatched launch, and a rank stopped by SIGSTOP ended by the watchdog.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "framework/dist.h"
#include "framework/random.h"
#include "framework/safetensors.h"
#include "tests/apps/app_test_util.h"
#include "tests/apps/mpi_test_util.h"

namespace fs = std::filesystem;
using namespace finch;
using namespace finch::test;

namespace {

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
  std::string common(const std::string& lr = "0.05", const std::string& model = "lenet5") const {
    return std::string(FINCH_BIN_DIR) + "/train_cifar --model " + model + " --dataset fashion-mnist --data " +
           (root_ / "fm").string() + " --threads 1 --workers 0 --seed 3 --epochs 2 --val-fraction 0 --lr " + lr;
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

// ResNet-20 (21 BatchNorm2d): one step of 2 × 16 with --sync-bn gives the weights and running
// statistics of 1 × 32; per-process statistics over 16 images do not. One step, because
// ResNet-20's training here is chaotic: 1 × 32 on 1 and on 2 threads (rounding differences only)
// end 8 steps 0.1 apart (docs/distributed.md), so only a single step can be held to rounding.
TEST_F(TrainMpi, SyncBatchNormMatchesOneProcessWithTheDoubleBatch) {
  const std::string args =
      common("0.05", "resnet20").substr(common().find(" --model")) + " --stop-after 1 --limit-train 32 --no-augment";
  const fs::path one = root_ / "one", sync = root_ / "sync", per_rank = root_ / "per_rank";
  const RunResult r1 = run_program("train_cifar", args + " --batch-size 32 --out " + one.string(), root_);
  ASSERT_EQ(r1.code, 0) << r1.err;
  const std::string two = "-np 2 " + std::string(FINCH_BIN_DIR) + "/train_cifar" + args + " --batch-size 16";
  const RunResult rs = mpirun(two + " --sync-bn --out " + sync.string(), root_);
  ASSERT_EQ(rs.code, 0) << rs.err;
  const RunResult rp = mpirun(two + " --out " + per_rank.string(), root_);
  ASSERT_EQ(rp.code, 0) << rp.err;
  const nlohmann::json d = nlohmann::json::parse(slurp((sync / "summary.json").string()))["distributed"];
  EXPECT_EQ(d["sync_batchnorm"], true);
  EXPECT_EQ(d["steps"], 1);
  // 21 BN layers (the stem, 2 per block, 2 downsampling shortcuts): one all-reduce each in
  // forward and in backward, of 2C + 1 and 2C doubles.
  EXPECT_EQ(d["sync_bn_collectives_per_step"], 42);
  // (summary.json keeps 4 significant digits)
  EXPECT_NEAR(d["sync_bn_bytes_per_step"].get<double>(), (7 * (4 * 16 + 1) + 7 * (4 * 32 + 1) + 7 * (4 * 64 + 1)) * 8, 10);
  const double d_sync = max_abs_diff(sync / "model.safetensors", one / "model.safetensors");
  const double d_per_rank = max_abs_diff(per_rank / "model.safetensors", one / "model.safetensors");
  // Rounding only, but not float-ulp small: the 3×3 convs' weight gradients (Winograd, images
  // grouped by batch size) are sums that BN's backward makes cancel, so a batch of 16 and one of
  // 32 round differently (measured: 2.4e-7 on this test's images, per-process BN 0.085; 1.4e-4 in
  // conv1.weight on real Fashion-MNIST, per-process BN 0.032).
  std::printf("ResNet-20, one step: 2 x 16 with --sync-bn is %.3g from 1 x 32, per-process BN %.3g\n", d_sync, d_per_rank);
  EXPECT_LT(d_sync, 1e-3) << "per-rank BN is " << d_per_rank << " away";
  EXPECT_GT(d_per_rank, 10 * d_sync);  // the comparison can tell synchronized from per-process BN
}

// `kill -STOP` of rank 1 from outside: rank 0 waits 3 s (--dist-timeout 3) in its next
// collective, says so, and the job ends non-zero, the stopped process included.
TEST_F(TrainMpi, ARankStoppedBySigstopEndsTheJob) {
  const fs::path pid_file = root_ / "rank1.pid";
  std::string train = common() + " --batch-size 16 --dist-timeout 3 --out " + (root_ / "x").string();
  train.replace(train.find(" --epochs 2"), 11, " --epochs 100");  // far longer than the test
  // Rank 1 is a shell that writes its pid and execs train_cifar (the same process).
  const std::string args = "-np 1 " + train + " : -np 1 sh -c 'echo $$ > " + pid_file.string() + "; exec " + train + "'";
  RunResult r;
  std::atomic<bool> finished{false};
  std::thread job([&] {
    r = mpirun(args, root_);
    finished = true;
  });
  // Wait until rank 0 announced the training (every rank is then past its start-up), then stop rank 1.
  pid_t pid = 0;
  bool announced = false;
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (!finished && !announced && std::chrono::steady_clock::now() < give_up) {
    if (pid == 0 && fs::exists(pid_file)) pid = pid_t(std::atoi(slurp(pid_file.string()).c_str()));
    announced = pid > 0 && slurp((root_ / "mpi_stderr.txt").string()).find("effective batch") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // inside the first epoch
  const bool stopped = announced && !finished && ::kill(pid, SIGSTOP) == 0;
  const auto t_stop = std::chrono::steady_clock::now();
  if (!stopped && pid > 0) ::kill(pid, SIGKILL);  // something went wrong: do not wait for 100 epochs
  job.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_stop).count();
  if (pid > 0) ::kill(pid, SIGKILL);  // in case the job left it behind (then the checks below fail anyway)
  ASSERT_TRUE(stopped) << "rank 1 (pid " << pid << ") was not running when the test meant to stop it:\n" << r.err;
  EXPECT_NE(r.code, 0) << r.err;
  EXPECT_NE(r.code, 124) << "the job hung until timeout killed it:\n" << r.err;
  EXPECT_NE(r.err.find("waited more than 3 s (--dist-timeout) for the other process"), std::string::npos) << r.err;
  EXPECT_LT(seconds, 3 + 20) << r.err;  // the timeout, then the abort
}

// train_series --model fcn (3 BatchNorm1d over [N, C, L]), Adam: 2 × 8 with --sync-bn ends an
// epoch (4 steps) with 1 × 16's tensors, except the convs' biases and, following them, the BN
// running means: a bias right before BN gets a gradient that is exactly 0 in real arithmetic (BN
// subtracts the mean), so it is rounding noise, which Adam's g/√v turns into steps of ±lr
// (measured here: every other tensor within 5.7e-7, per-process BN 4.7e-3; on another toy set
// 2.9e-3 in conv2.bias, every other tensor within 2.5e-8).
TEST_F(TrainMpi, SeriesSyncBatchNormMatchesOneProcessWithTheDoubleBatch) {
  // Class 0 a sine, class 1 a square wave, random phase (tests/apps/test_train_series.cc's toy set).
  auto write_ts = [](const fs::path& path, int64_t n, uint64_t seed) {
    Generator g(seed);
    std::ofstream f(path);
    f << "@problemName Toy\n@timeStamps false\n@missing false\n@univariate true\n@equalLength true\n"
         "@seriesLength 32\n@classLabel true sine square\n@data\n";
    for (int64_t i = 0; i < n; ++i) {
      const double phase = double(g.below(1000)) / 1000.0 * 6.28;
      for (int64_t t = 0; t < 32; ++t) {
        const double s = std::sin(0.5 * double(t) + phase);
        f << (t ? "," : "") << (i % 2 == 0 ? s : (s > 0 ? 1.0 : -1.0)) + 0.05 * (double(g.below(100)) / 100.0 - 0.5);
      }
      f << ":" << (i % 2 == 0 ? "sine" : "square") << "\n";
    }
  };
  write_ts(root_ / "Toy_TRAIN.ts", 64, 1);
  write_ts(root_ / "Toy_TEST.ts", 16, 2);
  const std::string args = " --train " + (root_ / "Toy_TRAIN.ts").string() + " --test " +
                           (root_ / "Toy_TEST.ts").string() +
                           " --model fcn --model-width 8 --threads 1 --workers 0 --seed 4 --epochs 2 --stop-after 1";
  const fs::path one = root_ / "one", sync = root_ / "sync", per_rank = root_ / "per_rank";
  const RunResult r1 = run_program("train_series", args + " --batch-size 16 --out " + one.string(), root_);
  ASSERT_EQ(r1.code, 0) << r1.err;
  const std::string two = "-np 2 " + std::string(FINCH_BIN_DIR) + "/train_series" + args + " --batch-size 8";
  const RunResult rs = mpirun(two + " --sync-bn --out " + sync.string(), root_);
  ASSERT_EQ(rs.code, 0) << rs.err;
  const RunResult rp = mpirun(two + " --out " + per_rank.string(), root_);
  ASSERT_EQ(rp.code, 0) << rp.err;
  const nlohmann::json d = nlohmann::json::parse(slurp((sync / "summary.json").string()))["distributed"];
  EXPECT_EQ(d["sync_batchnorm"], true);
  EXPECT_EQ(d["sync_bn_collectives_per_step"], 6);
  auto diff = [&](const fs::path& dir) {
    const SafetensorsFile a = load_safetensors((dir / "model.safetensors").string());
    const SafetensorsFile b = load_safetensors((one / "model.safetensors").string());
    double m = 0;
    for (const auto& [name, t] : a.tensors) {
      const bool noise = (name.rfind("conv", 0) == 0 && name.find(".bias") != std::string::npos) ||
                         name.find("running_mean") != std::string::npos;
      if (t.dtype() != DType::f32 || noise) continue;
      const auto x = t.to_vector<float>(), y = b.at(name).to_vector<float>();
      for (size_t i = 0; i < x.size(); ++i) m = std::max(m, double(std::fabs(x[i] - y[i])));
    }
    return m;
  };
  const double d_sync = diff(sync), d_per_rank = diff(per_rank);
  std::printf("FCN, 4 steps: 2 x 8 with --sync-bn is %.3g from 1 x 16, per-process BN %.3g\n", d_sync, d_per_rank);
  EXPECT_LT(d_sync, 1e-5) << "per-process BN is " << d_per_rank << " away";
  EXPECT_GT(d_per_rank, 1e-4);
}
