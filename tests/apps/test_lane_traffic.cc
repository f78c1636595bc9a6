// runtime::lane_traffic on the programs of issue 22 (finch bench-program: MobileNet v1 α 0.5 at
// 3×224×224 and MobileNetV2 --cifar at 1×28×28, fp32 and int8) at 2 threads: every depthwise conv
// split by bands reads at most a small share of its input from the other thread, where the split
// by channels read half of it; for fp32, the 1×1 convs after them likewise. (The int8 1×1 convs
// still read half across: their word-plane copy is split by channel quads, kernels/qs8_conv.cc.)
#include <gtest/gtest.h>

#include <string>

#include "runtime/lane_traffic.h"
#include "runtime/program_file.h"
#include "tests/apps/app_test_util.h"
#include "tests/temp_dir.h"

namespace finch::test {
namespace {

constexpr double kMaxCross = 0.15;

class LaneTraffic : public ::testing::Test {
 protected:
  TempDir dir_{"lane_traffic"};

  runtime::Graph make(const std::string& name, const std::string& args) {
    const std::string prog = dir_.path / (name + ".finch");
    const RunResult r = run_program("finch", "bench-program " + args + " --out " + prog, dir_.path);
    EXPECT_EQ(r.code, 0) << r.err;
    return runtime::read_program(prog);
  }

  // Per depthwise conv split by bands: at most kMaxCross of its reads from the other thread
  // where the output has 14 rows or more; a smaller one reads its halo rows across (a 3×3
  // stride-1 conv of 7 rows in bands of 4 and 3: 1 row of 5 and of 4), so at most 35 % there. A
  // depthwise conv the cost model leaves on one thread ("dw whole") reads what both wrote, either
  // way. For fp32, the 1×1 conv after a banded depthwise conv reads at most kMaxCross across too.
  static void check(const runtime::Graph& g, bool int8, const std::string& what) {
    SCOPED_TRACE(what);
    const auto before = runtime::lane_traffic(g, 2, /*dw_by_channels=*/true);
    const auto after = runtime::lane_traffic(g, 2);
    ASSERT_EQ(before.size(), after.size());
    int banded = 0, pw = 0;
    double before_dw = 0, after_dw = 0;
    int64_t cross_before = 0, cross_after = 0;
    for (size_t i = 0; i < after.size(); ++i) {
      const runtime::NodeTraffic& t = after[i];
      std::printf("%s %-22s %-12s before %5.1f %%  after %5.1f %%  (%lld reads)\n", what.c_str(), t.name.c_str(),
                  t.split.c_str(), 100 * before[i].share(), 100 * t.share(), (long long)t.reads);
      cross_before += before[i].cross, cross_after += t.cross;
      if (t.reads == 0) continue;  // reads the graph input
      if (t.split == "dw bands") {
        ++banded;
        const int64_t rows = g.values[size_t(g.nodes[size_t(t.node)].outputs[0])].shape[2];
        EXPECT_LE(t.share(), rows >= 14 ? kMaxCross : 0.35) << t.name << " (" << rows << " rows)";
        before_dw += before[i].share(), after_dw += t.share();
      } else if (!int8 && i > 0 && after[i - 1].split == "dw bands") {
        ++pw;
        EXPECT_LE(t.share(), kMaxCross) << t.name;
      }
    }
    EXPECT_GE(banded, 4);
    if (!int8) {
      EXPECT_GE(pw, 4);
    }
    // Split by channels, half of a depthwise conv's input came from the other thread.
    EXPECT_GT(before_dw / banded, 0.45);
    EXPECT_LT(after_dw / banded, 0.2);
    // fp32: the activations stay on their thread through the whole network, but for the halos
    // and the layers the cost model does not split.
    if (!int8) {
      EXPECT_LT(double(cross_after), 0.25 * double(cross_before));
    }
  }
};

TEST_F(LaneTraffic, MobileNetV1DepthwiseReadsItsOwnRows) {
  const std::string common = "--model mobilenet_v1 --width 0.5 --input-size 3x224x224 --classes 1000";
  check(make("v1-fp32", common + " --precision fp32"), false, "v1 fp32");
  check(make("v1-int8", common + " --precision int8 --calib-batches 1 --calib-batch-size 2"), true, "v1 int8");
}

TEST_F(LaneTraffic, MobileNetV2DepthwiseReadsItsOwnRows) {
  const std::string common = "--model mobilenetv2 --cifar --input-size 1x28x28";
  check(make("v2-fp32", common + " --precision fp32"), false, "v2 fp32");
  check(make("v2-int8", common + " --precision int8 --calib-batches 1 --calib-batch-size 2"), true, "v2 int8");
}

}  // namespace
}  // namespace finch::test
