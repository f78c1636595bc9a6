// The thread pool: every index visited once, deterministic splits, exceptions propagate.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "framework/parallel_internal.h"

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

namespace {

// The chunks one call hands to fn, sorted by start.
template <class Call>
std::vector<std::pair<int64_t, int64_t>> chunks_of(const Call& call) {
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> out;
  call([&](int64_t b, int64_t e) {
    std::lock_guard g(mu);
    out.emplace_back(b, e);
  });
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// The grain API's split stays what it was: min(threads, ceil(n / grain)) balanced chunks.
TEST(Parallel, GrainApiSplitIsBalancedAndCapped) {
  set_num_threads(3);
  using V = std::vector<std::pair<int64_t, int64_t>>;
  EXPECT_EQ(chunks_of([](auto fn) { parallel_for(0, 10, 1, fn); }), (V{{0, 4}, {4, 7}, {7, 10}}));
  EXPECT_EQ(chunks_of([](auto fn) { parallel_for(5, 15, 5, fn); }), (V{{5, 10}, {10, 15}}));
  EXPECT_EQ(chunks_of([](auto fn) { parallel_for(0, 10, 20, fn); }), (V{{0, 10}}));
  set_num_threads(2);
}

TEST(Parallel, CostApiVisitsEachIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    for (int64_t n : {0, 1, 2, 7, 64, 1001}) {
      for (double ns : {0.5, 300.0, 1e5}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (int rep = 0; rep < 5; ++rep)
          parallel_for(0, n, Work::nanoseconds(ns), [&](int64_t b, int64_t e) {
            for (int64_t i = b; i < e; ++i) hits[size_t(i)]++;
          });
        for (auto& h : hits) ASSERT_EQ(h.load(), 5) << threads << " threads, n " << n << ", " << ns << " ns";
      }
    }
  }
  set_num_threads(2);
}

TEST(Parallel, TwoDimensionalVisitsEachCellOnce) {
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    for (const auto& mn : {std::pair<int64_t, int64_t>{1, 1}, {1, 37}, {2, 5}, {3, 64}, {50, 3}, {0, 4}}) {
      const int64_t m = mn.first, n = mn.second;  // (clang 14 cannot capture structured bindings)
      for (double ns : {1.0, 2e5}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(m * n));
        parallel_for_2d(m, n, Work::nanoseconds(ns), [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
          EXPECT_LT(m0, m1);
          EXPECT_LT(n0, n1);
          for (int64_t i = m0; i < m1; ++i)
            for (int64_t j = n0; j < n1; ++j) hits[size_t(i * n + j)]++;
        });
        for (auto& h : hits) ASSERT_EQ(h.load(), 1) << threads << " threads, " << m << "x" << n << ", " << ns;
      }
    }
  }
  set_num_threads(2);
}

// A layer too small to win back a fork/join runs on the caller in one piece.
TEST(Parallel, TinyWorkRunsOnTheCallerAlone) {
  set_num_threads(4);
  EXPECT_EQ(plan_chunks(1000, Work::nanoseconds(1), 4), 1);
  EXPECT_EQ(plan_chunks(16, Work::macs_i8(100), 4), 1);
  EXPECT_EQ(plan_2d(4, 4, Work::bytes(64), 4).m_parts * plan_2d(4, 4, Work::bytes(64), 4).n_parts, 1);
  const auto me = std::this_thread::get_id();
  int calls = 0;
  parallel_for(0, 1000, Work::nanoseconds(1), [&](int64_t b, int64_t e) {
    EXPECT_EQ(std::this_thread::get_id(), me);
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 1000);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  // An fp32 add over ResNet-20's 16×28×28 (about 2 us at memory speed) stays on the caller; priced
  // as int8 bytes it was split in 7 and took 8 us at 2 threads. A 32×112×112 one is split.
  EXPECT_EQ(plan_chunks(16 * 28 * 28, Work::bytes_stream(12), 2), 1);
  EXPECT_GT(plan_chunks(16 * 28 * 28, Work::bytes(12), 2), 1);
  EXPECT_GE(plan_chunks(32 * 112 * 112, Work::bytes_stream(12), 2), 2);
  set_num_threads(2);
}

// Enough work uses every thread, in a few more chunks than threads but never more than
// iterations; one thread never splits.
TEST(Parallel, BigWorkSplitsAcrossThreads) {
  for (int threads : {2, 3, 8}) {
    const int64_t c = plan_chunks(1000, Work::nanoseconds(1e5), threads);
    EXPECT_GE(c, threads);
    EXPECT_LE(c, 1000);
    EXPECT_LE(plan_chunks(3, Work::nanoseconds(1e7), threads), 3);
    EXPECT_EQ(plan_chunks(1000, Work::nanoseconds(1e5), 1), 1);
  }
  // One pixel tile but many channel panels: the columns are split so both threads work.
  const Split2d one_row = plan_2d(1, 64, Work::nanoseconds(1e4), 2);
  EXPECT_EQ(one_row.m_parts, 1);
  EXPECT_GE(one_row.n_parts, 2);
  // Many rows: only the rows are split (each row's packing is done once).
  const Split2d many_rows = plan_2d(200, 8, Work::nanoseconds(1e4), 2);
  EXPECT_GE(many_rows.m_parts, 2);
  EXPECT_EQ(many_rows.n_parts, 1);
}

// Chunk boundaries are a pure function of (range, work, threads): the same on every call, and
// the same when the pool is busy with another application thread and the call runs inline.
TEST(Parallel, CostApiChunkingIsDeterministic) {
  set_num_threads(2);
  auto call = [](auto fn) { parallel_for(3, 3 + 777, Work::nanoseconds(2e3), fn); };
  const auto first = chunks_of(call);
  ASSERT_GE(first.size(), 2u);
  EXPECT_EQ(first.front().first, 3);
  EXPECT_EQ(first.back().second, 780);
  for (size_t i = 1; i < first.size(); ++i) EXPECT_EQ(first[i - 1].second, first[i].first);
  for (int rep = 0; rep < 20; ++rep) ASSERT_EQ(chunks_of(call), first);
  // Another thread holds the pool (its region waits on `release`) while this one calls.
  std::atomic<bool> inside{false}, release{false};
  std::thread holder([&] {
    parallel_for(0, 2, 1, [&](int64_t b, int64_t) {
      if (b == 0) {
        inside = true;
        while (!release) std::this_thread::yield();
      }
    });
  });
  while (!inside) std::this_thread::yield();
  const auto busy = chunks_of(call);
  release = true;
  holder.join();
  EXPECT_EQ(busy, first);
  // A different thread count may split differently, but again the same way every time.
  set_num_threads(3);
  const auto three = chunks_of(call);
  EXPECT_EQ(chunks_of(call), three);
  set_num_threads(2);
}

TEST(Parallel, CostApiNestsInlineAndRethrows) {
  set_num_threads(3);
  std::atomic<int> inner{0};
  parallel_for(0, 64, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) {
    EXPECT_TRUE(in_parallel_region());
    const auto me = std::this_thread::get_id();
    parallel_for_2d(4, 4, Work::nanoseconds(1e6), [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
      EXPECT_EQ(std::this_thread::get_id(), me);  // nested: inline on this thread
      inner += int((m1 - m0) * (n1 - n0) * (e - b));
    });
  });
  EXPECT_EQ(inner.load(), 16 * 64);
  EXPECT_FALSE(in_parallel_region());
  EXPECT_THROW(parallel_for(0, 100, Work::nanoseconds(1e5), [](int64_t b, int64_t) {
                 if (b > 50) fail("boom");
               }),
               Error);
  EXPECT_FALSE(in_parallel_region());
  EXPECT_THROW(parallel_for_2d(1, 100, Work::nanoseconds(1e5), [](int64_t, int64_t, int64_t n0, int64_t) {
                 if (n0 > 0) fail("boom");
               }),
               Error);
  EXPECT_FALSE(in_parallel_region());
  // The pool still works after the errors.
  std::atomic<int64_t> total{0};
  parallel_for(0, 1000, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) { total += e - b; });
  EXPECT_EQ(total.load(), 1000);
  set_num_threads(2);
}

// Regions back to back, with sleeps between some of them so the workers go to sleep and must be
// woken, and wake_workers() calls between others: no region may be lost or run twice.
TEST(Parallel, WorkersSleepAndWake) {
  set_num_threads(2);
  int64_t total = 0;
  std::atomic<int64_t> seen{0};
  for (int rep = 0; rep < 300; ++rep) {
    if (rep % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (rep % 50 == 25) wake_workers();  // woken without a region: they spin, then sleep again
    if (rep % 100 == 10) std::this_thread::sleep_for(std::chrono::microseconds(300));
    parallel_for(0, 10, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) { seen += e - b; });
    total += 10;
  }
  EXPECT_EQ(seen.load(), total);
}

// Regions inside HotScopes (nested, with idle gaps longer than a worker's spin, a thread-count
// change while one is held, and two application threads each holding one): every index is
// visited once, and the pool still sleeps and wakes normally after the scopes end.
TEST(Parallel, HotScopeKeepsRegionsExact) {
  set_num_threads(2);
  std::atomic<int64_t> seen{0};
  int64_t total = 0;
  auto region = [&] {
    parallel_for(0, 10, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) { seen += e - b; });
    total += 10;
  };
  {
    const HotScope outer;
    for (int rep = 0; rep < 200; ++rep) {
      if (rep % 40 == 0) std::this_thread::sleep_for(std::chrono::microseconds(500));
      if (rep % 50 == 10) {
        const HotScope inner;
        region();
      }
      if (rep == 120) set_num_threads(3);  // workers replaced while the scope is held
      region();
    }
  }
  EXPECT_EQ(seen.load(), total);
  set_num_threads(2);
  std::atomic<int64_t> other{0};
  std::thread t([&] {
    const HotScope hot;
    for (int rep = 0; rep < 100; ++rep)
      parallel_for(0, 10, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) { other += e - b; });
  });
  {
    const HotScope hot;
    for (int rep = 0; rep < 100; ++rep) region();
  }
  t.join();
  EXPECT_EQ(other.load(), 1000);
  std::this_thread::sleep_for(std::chrono::milliseconds(2));  // past the spin: workers asleep
  region();
  EXPECT_EQ(seen.load(), total);
}

// ThreadLimit: inside the scope every region of this thread is planned for the cap (1: all on
// the caller, no pool region), nested scopes keep the smaller cap, other threads are not capped,
// and the cap ends with the scope.
TEST(Parallel, ThreadLimitCapsOnlyThisThreadsRegions) {
  set_num_threads(3);
  auto pool_regions_of = [](auto&& body) {
    const int64_t before = detail::thread_pool_regions();
    body();
    return detail::thread_pool_regions() - before;
  };
  std::atomic<int64_t> seen{0};
  auto big = [&] {
    parallel_for(0, 64, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) { seen += e - b; });
    parallel_for_2d(8, 8, Work::nanoseconds(1e5), [&](int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
      seen += (m1 - m0) * (n1 - n0);
    });
    parallel_for(0, 64, 1, [&](int64_t b, int64_t e) { seen += e - b; });
  };
  // Uncapped these regions go to the pool (unless it is backing off under load: not asserted).
  ASSERT_GT(plan_chunks(64, Work::nanoseconds(1e5), 3), 1);
  EXPECT_LE(pool_regions_of(big), 3);
  {
    const ThreadLimit alone(1);
    EXPECT_EQ(get_num_threads(), 1);
    EXPECT_EQ(pool_regions_of(big), 0) << "capped at 1, every region runs on the caller";
    {
      const ThreadLimit two(2);
      EXPECT_EQ(get_num_threads(), 1) << "nested: the smaller cap wins";
    }
    std::thread other([] { EXPECT_EQ(get_num_threads(), 3) << "another thread is not capped"; });
    other.join();
  }
  {
    const ThreadLimit two(2);
    EXPECT_EQ(get_num_threads(), 2);
    EXPECT_EQ(plan_chunks(1000, Work::nanoseconds(1e5), get_num_threads()), plan_chunks(1000, Work::nanoseconds(1e5), 2));
    const ThreadLimit zero(0);
    EXPECT_EQ(get_num_threads(), 1) << "a cap below 1 is 1";
  }
  EXPECT_EQ(get_num_threads(), 3);
  EXPECT_EQ(seen.load(), 2 * 3 * 64);
  set_num_threads(2);
}

// A worker stuck inside a chunk (as one the OS descheduled) holds back only that chunk: the
// caller runs its own lane, then steals the rest of the worker's lane from the back. Each chunk
// a worker runs blocks until every other chunk is done; were the worker's lane not stolen, it
// would time out. Repeated inside a HotScope so the worker joins most regions (on a busy machine
// it may join none: then the caller runs every chunk, which the test also accepts).
TEST(Parallel, StuckWorkerChunkDoesNotHoldBackTheRest) {
  set_num_threads(2);
  const HotScope hot;
  const std::thread::id caller = std::this_thread::get_id();
  int joined = 0;
  for (int rep = 0; rep < 50; ++rep) {
    constexpr int64_t kChunks = 8;
    ASSERT_EQ(plan_chunks(kChunks, Work::nanoseconds(1e5), 2), kChunks);
    std::atomic<int64_t> done{0}, by_worker{0};
    std::atomic<bool> timed_out{false};
    std::vector<std::atomic<int>> visits(kChunks);
    parallel_for(0, kChunks, Work::nanoseconds(1e5), [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        visits[size_t(i)].fetch_add(1);
        if (std::this_thread::get_id() == caller) {
          // Long enough for a spinning worker to join before the caller has claimed every chunk.
          const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
          while (std::chrono::steady_clock::now() < until) {
          }
        } else {
          by_worker.fetch_add(1);
          const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
          while (done.load() < kChunks - 1)
            if (std::chrono::steady_clock::now() > until) {
              timed_out = true;
              break;
            }
        }
        done.fetch_add(1);
      }
    });
    for (auto& v : visits) ASSERT_EQ(v.load(), 1);
    ASSERT_FALSE(timed_out.load()) << "the caller did not take the stuck worker's other chunks";
    ASSERT_LE(by_worker.load(), 1) << "a worker blocked in its first chunk cannot have run a second";
    joined += by_worker.load() > 0;
  }
  std::printf("worker joined %d of 50 regions\n", joined);
}
