// ThreadChoice (runtime/thread_choice.h), the per-node split-or-not choice, on synthetic times:
// which runs measure, which nodes each run caps, what the medians decide, and that a new thread
// count or batch starts over. Nothing here is timed (tests/apps/test_program_threads.cc runs
// whole programs under the choice and checks their outputs bit for bit).
#include <gtest/gtest.h>

#include "runtime/thread_choice.h"

namespace finch::test {
namespace {

using runtime::ThreadChoice;
// Runs of one thread count and batch until the first choice is made.
constexpr int kToDecide = ThreadChoice::kSettleRuns + ThreadChoice::kLearnRuns + 1;

// One run of `c` where each node takes one[i] seconds capped and many[i] split, and ran a pool
// region when uncapped.
void run_once(ThreadChoice& c, int threads, const std::vector<double>& one, const std::vector<double>& many,
              int64_t batch = 1) {
  c.begin_run(threads, batch);
  if (c.measuring())
    for (size_t i = 0; i < one.size(); ++i) c.record(i, c.cap(i) == 1 ? one[i] : many[i], c.cap(i) == 1 ? 0 : 1);
  c.end_run();
}

// The whole-run comparison right after learning, untimed here (the choice stays per node): what
// the tests of the per-node choice look past.
void skip_whole_runs(ThreadChoice& c) {
  for (int r = 0; r < ThreadChoice::kWholeRuns; ++r) {
    c.begin_run(2, 1);
    ASSERT_TRUE(c.timing_whole());
    c.end_run(-1);
  }
}

TEST(ThreadChoice, OneThreadNeverMeasuresNorCaps) {
  ThreadChoice c({true, false});
  for (int r = 0; r < 50; ++r) {
    c.begin_run(1, 1);
    EXPECT_FALSE(c.measuring());
    EXPECT_FALSE(c.any_split());
    EXPECT_EQ(c.cap(0), 0);
    EXPECT_EQ(c.cap(1), 0);
    c.end_run();
  }
}

TEST(ThreadChoice, LearnsByAlternatingThenKeepsTheFasterWay) {
  // Node 0 wins split, node 1 loses clearly, node 2 loses by less than the margin (stays split:
  // the cost model's plan), node 3 is not choosable.
  ThreadChoice c({true, true, true, false});
  const std::vector<double> one{10e-6, 5e-6, 8e-6, 3e-6}, many{6e-6, 7e-6, 8.5e-6, 2e-6};
  for (int r = 0; r <= ThreadChoice::kSettleRuns; ++r) {
    // Settling, then one untimed mixed run: uncapped at first, learning which nodes split; the
    // times (absurd here) must not count.
    c.begin_run(2, 1);
    EXPECT_TRUE(c.measuring());
    if (r < ThreadChoice::kSettleRuns) {
      for (size_t i = 0; i < 4; ++i) EXPECT_EQ(c.cap(i), 0);
    }
    for (size_t i = 0; i < 4; ++i) c.record(i, 1.0, 1);
    c.end_run();
  }
  for (int r = 2; r <= ThreadChoice::kLearnRuns + 1; ++r) {
    c.begin_run(2, 1);
    EXPECT_TRUE(c.measuring());
    EXPECT_EQ(c.cap(0), r % 2 ? 0 : 1) << "run " << r << ": every other node capped, alternating";
    EXPECT_EQ(c.cap(1), r % 2 ? 1 : 0) << "run " << r;
    EXPECT_TRUE(c.any_split()) << "a measured run keeps the workers awake";
    EXPECT_EQ(c.cap(3), 0) << "a node that is not choosable is never capped";
    for (size_t i = 0; i < 4; ++i) c.record(i, c.cap(i) == 1 ? one[i] : many[i], 1);
    c.end_run();
  }
  EXPECT_TRUE(c.split(0));
  EXPECT_FALSE(c.split(1));
  EXPECT_TRUE(c.split(2)) << "alone must win by the margin";
  skip_whole_runs(c);
  c.begin_run(2, 1);
  EXPECT_FALSE(c.measuring());
  EXPECT_EQ(c.cap(0), 0);
  EXPECT_EQ(c.cap(1), 1);
  EXPECT_TRUE(c.any_split());
  c.end_run();
}

TEST(ThreadChoice, ExploresTheOtherWayAndFollowsAChange) {
  ThreadChoice c({true});
  for (int r = 0; r < kToDecide; ++r) run_once(c, 2, {10e-6}, {6e-6});
  ASSERT_TRUE(c.split(0));
  // The machine gets busy: split now takes 20 µs. Within a few exploration rounds the node moves
  // to the caller; the runs between explorations measure nothing.
  int measured = 0, runs = 0;
  while (c.split(0) && runs < 10 * ThreadChoice::kExploreEvery) {
    c.begin_run(2, 1);
    measured += c.measuring();
    if (c.measuring()) c.record(0, c.cap(0) == 1 ? 10e-6 : 20e-6, c.cap(0) == 1 ? 0 : 1);
    c.end_run();
    ++runs;
  }
  EXPECT_FALSE(c.split(0));
  EXPECT_LE(runs, 3 * ThreadChoice::kExploreEvery + ThreadChoice::kWholeRuns) << "the median of " << ThreadChoice::kSamples << " samples moves in a few rounds";
  // Two measured runs per exploration round (the choice may move after the first of a pair); the
  // rounds start after the whole-run comparison's runs.
  const int rounds = (runs - ThreadChoice::kWholeRuns + ThreadChoice::kExploreEvery - 1) / ThreadChoice::kExploreEvery;
  EXPECT_TRUE(measured == 2 * rounds || measured == 2 * rounds - 1) << measured << " in " << rounds << " rounds";
}

// One run where every node is faster split on its own (per-node samples), but the whole run takes
// `whole_one` seconds with every node capped and `whole_split` with the choice.
void run_whole(ThreadChoice& c, double whole_one, double whole_split) {
  c.begin_run(2, 1);
  if (c.measuring())
    for (size_t i = 0; i < 2; ++i) c.record(i, c.cap(i) == 1 ? 10e-6 : 6e-6, c.cap(i) == 1 ? 0 : 1);
  const bool all_capped = c.cap(0) == 1 && c.cap(1) == 1;
  c.end_run(c.timing_whole() ? (all_capped ? whole_one : whole_split) : -1.0);
}

TEST(ThreadChoice, WholeRunsOverruleNodesThatEachWinSplit) {
  ThreadChoice c({true, true});
  for (int r = 0; r < kToDecide; ++r) run_whole(c, 100e-6, 120e-6);
  ASSERT_TRUE(c.split(0));
  ASSERT_TRUE(c.split(1));
  EXPECT_FALSE(c.all_alone()) << "no whole run timed yet";
  // The comparison: capped and choice runs alternate, timed whole, workers kept awake.
  int capped = 0, chosen = 0;
  for (int r = 0; r < ThreadChoice::kWholeRuns; ++r) {
    c.begin_run(2, 1);
    ASSERT_TRUE(c.timing_whole()) << r;
    EXPECT_FALSE(c.measuring()) << r;
    EXPECT_TRUE(c.any_split()) << r;
    const bool all_capped = c.cap(0) == 1 && c.cap(1) == 1;
    capped += all_capped, chosen += c.cap(0) == 0 && c.cap(1) == 0;
    c.end_run(all_capped ? 100e-6 : 120e-6);
  }
  EXPECT_EQ(capped, ThreadChoice::kWholeRuns / 2);
  EXPECT_EQ(chosen, ThreadChoice::kWholeRuns / 2);
  EXPECT_TRUE(c.all_alone()) << "the one-thread program was faster as a whole";
  EXPECT_TRUE(c.split(0)) << "the per-node choice is kept for the next comparisons";
  c.begin_run(2, 1);
  EXPECT_FALSE(c.timing_whole());
  EXPECT_EQ(c.cap(0), 1);
  EXPECT_EQ(c.cap(1), 1);
  EXPECT_FALSE(c.any_split()) << "every splitting node on the caller: the workers may sleep";
  c.end_run(-1);
  // The machine changes: split wins as a whole now. The exploration rounds' pairs bring it back.
  int runs = 0;
  while (c.all_alone() && runs < 10 * ThreadChoice::kExploreEvery) {
    run_whole(c, 100e-6, 70e-6);
    ++runs;
  }
  EXPECT_FALSE(c.all_alone());
  EXPECT_LE(runs, 5 * ThreadChoice::kExploreEvery) << "a median of " << ThreadChoice::kSamples << " moves in a few rounds";
  c.begin_run(2, 1);
  if (!c.timing_whole() && !c.measuring()) {
    EXPECT_EQ(c.cap(0), 0);
    EXPECT_EQ(c.cap(1), 0);
  }
  c.end_run(-1);
}

TEST(ThreadChoice, ANodeThatNeverSplitsStaysUncappedAndTheRunNeedsNoWorkers) {
  ThreadChoice c({true});
  for (int r = 0; r < kToDecide; ++r) {
    c.begin_run(2, 1);
    c.record(0, 5e-6, 0);  // no pool region either way
    c.end_run();
  }
  EXPECT_TRUE(c.split(0));
  skip_whole_runs(c);
  c.begin_run(2, 1);
  EXPECT_EQ(c.cap(0), 0);
  EXPECT_FALSE(c.any_split()) << "no node splits: the program need not keep workers spinning";
  c.end_run();
}

TEST(ThreadChoice, ANewThreadCountOrBatchLearnsAgain) {
  ThreadChoice c({true});
  for (int r = 0; r < kToDecide; ++r) run_once(c, 2, {5e-6}, {9e-6});
  ASSERT_FALSE(c.split(0));
  c.begin_run(3, 1);
  EXPECT_TRUE(c.learning());
  EXPECT_TRUE(c.split(0));
  c.end_run();
  for (int r = 0; r < kToDecide; ++r) run_once(c, 3, {5e-6}, {9e-6});
  ASSERT_FALSE(c.split(0));
  c.begin_run(3, 8);
  EXPECT_TRUE(c.learning());
  c.end_run();
}

}  // namespace
}  // namespace finch::test
