// The thread pool: every index visited once, deterministic splits, exceptions propagate.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"

using namespace finch;

TEST(Parallel, VisitsEachIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    for (int64_t n : {0, 1, 5, 64, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 20; ++rep)
        parallel_for(0, n, 7, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
        });
      for (auto& h : hits) EXPECT_EQ(h.load(), 20);
    }
  }
  set_num_threads(2);
}

TEST(Parallel, NestedRunsInlineAndErrorsPropagate) {
  set_num_threads(4);
  std::atomic<int> inner{0};
  parallel_for(0, 4, 1, [&](int64_t, int64_t) {
    EXPECT_TRUE(in_parallel_region());
    parallel_for(0, 10, 1, [&](int64_t b, int64_t e) { inner += int(e - b); });
  });
  EXPECT_EQ(inner.load(), 40);
  EXPECT_FALSE(in_parallel_region());
  EXPECT_THROW(parallel_for(0, 100, 1, [](int64_t b, int64_t) {
                 if (b > 50) fail("boom");
               }),
               Error);
  set_num_threads(2);
}

TEST(Parallel, ConcurrentCallersFromOtherThreadsAreSafe) {
  set_num_threads(2);
  std::atomic<int64_t> total{0};
  auto work = [&] {
    for (int rep = 0; rep < 200; ++rep)
      parallel_for(0, 1000, 10, [&](int64_t b, int64_t e) { total += e - b; });
  };
  std::thread a(work), b(work), c(work);
  a.join();
  b.join();
  c.join();
  EXPECT_EQ(total.load(), 3 * 200 * 1000);
}

// --threads 10000 made one 28×28 image take a minute: requests past 4 per hardware thread are
// capped, and the work still runs.
TEST(Parallel, AbsurdThreadCountsAreCapped) {
  const int before = get_num_threads();
  set_num_threads(100000);
  EXPECT_EQ(get_num_threads(), max_threads());
  EXPECT_LE(max_threads(), 4 * int(std::max(1u, std::thread::hardware_concurrency())));
  std::atomic<int64_t> total{0};
  parallel_for(0, 1000, 1, [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total.load(), 1000);
  set_num_threads(before);
}
