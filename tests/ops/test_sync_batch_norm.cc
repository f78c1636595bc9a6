// Synchronized batch norm kernels: with one process they are batch norm (against the reference,
// on every Highway target); two "processes" as two threads, each with half of a batch and a hook
// that sums across them, reproduce batch norm over the whole batch; bad inputs are sentences.
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <sstream>
#include <thread>
#include <vector>

#include "framework/parallel.h"
#include "ops/elementwise.h"
#include "ops/norm.h"
#include "ops/sync_batch_norm.h"
#include "tests/ops/test_util.h"

namespace finch {
namespace {

using test::all_close;

Tensor rnd(const Shape& s, uint64_t seed, DType dt, double scale = 1.0, double shift = 0.0) {
  return test::random_tensor(s, seed, scale, shift, dt);
}

double tol(DType dt) { return dt == DType::f32 ? 2e-5 : 1e-12; }

const ops::SumAcrossProcesses kOneProcess = [](double*, int64_t) {};

// Two threads playing two processes: sum() returns when both have contributed, each with the
// element-wise total — what MPI's all-reduce gives two ranks. Calls pair up in order.
class ThreadPair {
 public:
  void sum(double* v, int64_t n) {
    std::unique_lock<std::mutex> lock(mu_);
    const int64_t gen = generation_;
    if (arrived_ == 0) acc_.assign(v, v + n);
    else
      for (int64_t i = 0; i < n; ++i) acc_[size_t(i)] += v[i];
    if (++arrived_ == 2) {
      result_ = acc_;
      arrived_ = 0;
      ++generation_;
      ++calls_;
      cv_.notify_all();
    } else {
      cv_.wait(lock, [&] { return generation_ != gen; });
    }
    std::copy(result_.begin(), result_.end(), v);
  }
  int64_t calls() const { return calls_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<double> acc_, result_;
  int arrived_ = 0;
  int64_t generation_ = 0, calls_ = 0;
};

struct Case {
  Shape shape;
  DType dt;
  bool affine, running;
};

std::string name(const Case& c) {
  std::ostringstream os;
  os << shape_str(c.shape) << " " << dtype_name(c.dt) << (c.affine ? " affine" : "") << (c.running ? " running" : "");
  return os.str();
}

// One process: sync_batch_norm with a do-nothing hook equals ops::batch_norm in training mode.
void check_one_process(const Case& c, uint64_t seed) {
  SCOPED_TRACE(name(c));
  const int64_t C = c.shape[1];
  const Tensor x = rnd(c.shape, seed, c.dt, 2.0, 3.0);  // a mean far from 0 tests the Σx² form
  const Tensor dy = rnd(c.shape, seed + 1, c.dt);
  const Tensor w = c.affine ? rnd({C}, seed + 2, c.dt) : Tensor();
  const Tensor b = c.affine ? rnd({C}, seed + 3, c.dt) : Tensor();
  Tensor rm = c.running ? rnd({C}, seed + 4, c.dt, 0.1) : Tensor();
  Tensor rv = c.running ? full({C}, 1.5, c.dt) : Tensor();
  Tensor rm2 = c.running ? rm.clone() : Tensor(), rv2 = c.running ? rv.clone() : Tensor();
  const auto e = ops::batch_norm(x, rm2, rv2, w, b, true, 0.1, 1e-3);
  const auto r = ops::sync_batch_norm(x, rm, rv, w, b, 0.1, 1e-3, kOneProcess);
  const double t = tol(c.dt), M = double(x.numel() / C);
  EXPECT_EQ(r.count, x.numel() / C);
  EXPECT_TRUE(all_close(r.bn.y, e.y, t, 10 * t));
  EXPECT_TRUE(all_close(r.bn.save_mean, e.save_mean, t, t));
  EXPECT_TRUE(all_close(r.bn.save_invstd, e.save_invstd, t, 10 * t));
  if (c.running) {
    EXPECT_TRUE(all_close(rm, rm2, t, t));
    EXPECT_TRUE(all_close(rv, rv2, t, 10 * t));
  }
  const auto ge = ops::batch_norm_backward(dy, x, w, e.save_mean, e.save_invstd, true);
  const auto g = ops::sync_batch_norm_backward(dy, x, w, r.bn.save_mean, r.bn.save_invstd, r.count, kOneProcess);
  EXPECT_TRUE(all_close(g.dx, ge.dx, 10 * t, 100 * t));
  EXPECT_TRUE(all_close(g.dweight, ge.dweight, 10 * t * M, 100 * t));
  EXPECT_TRUE(all_close(g.dbias, ge.dbias, 10 * t * M, 100 * t));
}

TEST(SyncBatchNorm, OneProcessIsBatchNormOnEveryTarget) {
  test::for_each_target([] {
    uint64_t seed = 1;
    for (DType dt : {DType::f32, DType::f64})
      for (bool affine : {true, false}) {
        check_one_process({{5, 3}, dt, affine, true}, seed += 7);       // BatchNorm1d [N, C]
        check_one_process({{2, 17}, dt, affine, !affine}, seed += 7);
        check_one_process({{3, 4, 9}, dt, affine, true}, seed += 7);    // [N, C, L]
        check_one_process({{4, 3, 5, 7}, dt, affine, !affine}, seed += 7);  // a run of 35 > one vector
        check_one_process({{1, 2, 1, 2}, dt, affine, true}, seed += 7);  // 2 values per channel
      }
  });
  check_one_process({{64, 3, 32, 32}, DType::f32, true, true}, 99);  // long channels keep precision
}

// Two threads, each with half of the batch (rows [0, N/2) and [N/2, N)), against batch norm of
// the whole batch: y and dx per half, the running statistics (equal on both "processes"), and the
// parameter gradients summed over the halves.
void check_two_halves(const Shape& shape, DType dt, uint64_t seed) {
  SCOPED_TRACE(shape_str(shape) + " " + dtype_name(dt));
  const int64_t N = shape[0], C = shape[1], H = N / 2;
  const Tensor x = rnd(shape, seed, dt, 1.5, -2.0);
  const Tensor dy = rnd(shape, seed + 1, dt);
  const Tensor w = rnd({C}, seed + 2, dt), b = rnd({C}, seed + 3, dt);
  Tensor rm = rnd({C}, seed + 4, dt, 0.1), rv = full({C}, 0.7, dt);
  Tensor rms[2] = {rm.clone(), rm.clone()}, rvs[2] = {rv.clone(), rv.clone()};
  const auto e = ops::batch_norm(x, rm, rv, w, b, true, 0.1, 1e-5);
  const auto ge = ops::batch_norm_backward(dy, x, w, e.save_mean, e.save_invstd, true);

  ThreadPair pair;
  const ops::SumAcrossProcesses sum = [&](double* v, int64_t n) { pair.sum(v, n); };
  ops::SyncBatchNormResult r[2];
  ops::NormGrads g[2];
  auto rank = [&](int k) {
    const Tensor xs = x.slice(0, k * H, (k + 1) * H), dys = dy.slice(0, k * H, (k + 1) * H);
    r[k] = ops::sync_batch_norm(xs, rms[k], rvs[k], w, b, 0.1, 1e-5, sum);
    g[k] = ops::sync_batch_norm_backward(dys, xs, w, r[k].bn.save_mean, r[k].bn.save_invstd, r[k].count, sum);
  };
  std::thread t1(rank, 1);
  rank(0);
  t1.join();
  EXPECT_EQ(pair.calls(), 2);  // one collective in forward, one in backward
  const double t = tol(dt), M = double(x.numel() / C);
  for (int k = 0; k < 2; ++k) {
    SCOPED_TRACE("half " + std::to_string(k));
    EXPECT_EQ(r[k].count, x.numel() / C);
    EXPECT_TRUE(all_close(r[k].bn.y, e.y.slice(0, k * H, (k + 1) * H), t, 10 * t));
    EXPECT_TRUE(all_close(r[k].bn.save_mean, e.save_mean, t, t));
    EXPECT_TRUE(all_close(r[k].bn.save_invstd, e.save_invstd, t, 10 * t));
    EXPECT_TRUE(all_close(rms[k], rm, t, t));
    EXPECT_TRUE(all_close(rvs[k], rv, t, 10 * t));
    EXPECT_TRUE(all_close(g[k].dx, ge.dx.slice(0, k * H, (k + 1) * H), 10 * t, 100 * t));
  }
  EXPECT_TRUE(all_close(ops::add(g[0].dweight, g[1].dweight), ge.dweight, 10 * t * M, 100 * t));
  EXPECT_TRUE(all_close(ops::add(g[0].dbias, g[1].dbias), ge.dbias, 10 * t * M, 100 * t));
  // And the halves alone (per-process statistics) are not the whole batch's: the test can fail.
  const auto alone = ops::batch_norm(x.slice(0, 0, H), Tensor(), Tensor(), w, b, true, 0.1, 1e-5);
  EXPECT_FALSE(all_close(alone.save_mean, e.save_mean, 1e-3, 1e-3));
}

TEST(SyncBatchNorm, TwoProcessesOfHalfTheBatchNormalizeLikeTheWholeBatch) {
  set_num_threads(2);  // both "processes" share the pool (parallel_for is safe from two threads)
  uint64_t seed = 100;
  for (DType dt : {DType::f32, DType::f64}) {
    check_two_halves({8, 5}, dt, seed += 7);           // BatchNorm1d [N, C]
    check_two_halves({6, 3, 10}, dt, seed += 7);       // [N, C, L]
    check_two_halves({4, 4, 6, 6}, dt, seed += 7);     // BatchNorm2d
    check_two_halves({2, 70, 3, 3}, dt, seed += 7);    // many channels, one sample per half
  }
}

TEST(SyncBatchNorm, BadInputsAreSentences) {
  const Tensor x = rnd({1, 3}, 1, DType::f32);
  EXPECT_THROW(ops::sync_batch_norm(x, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, kOneProcess), Error);
  const Tensor x2 = rnd({4, 3}, 2, DType::f32);
  // Two values per channel once the hook adds a second process's: accepted.
  const ops::SumAcrossProcesses doubled = [](double* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) v[i] *= 2;
  };
  EXPECT_EQ(ops::sync_batch_norm(rnd({1, 3}, 3, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5,
                                 doubled).count,
            2);
  EXPECT_THROW(ops::sync_batch_norm(x2, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, nullptr), Error);
  EXPECT_THROW(ops::sync_batch_norm(x2, Tensor(), Tensor(), Tensor(), Tensor(), 1.5, 1e-5, kOneProcess), Error);
  EXPECT_THROW(ops::sync_batch_norm(x2, zeros({4}), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, kOneProcess), Error);
  EXPECT_THROW(ops::sync_batch_norm(rnd({4}, 4, DType::f32), Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5,
                                    kOneProcess),
               Error);
  const auto r = ops::sync_batch_norm(x2, Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-5, kOneProcess);
  EXPECT_THROW(ops::sync_batch_norm_backward(x2, x2, Tensor(), r.bn.save_mean, r.bn.save_invstd, 1, kOneProcess),
               Error);
  EXPECT_THROW(ops::sync_batch_norm_backward(rnd({4, 2}, 5, DType::f32), x2, Tensor(), r.bn.save_mean,
                                             r.bn.save_invstd, r.count, kOneProcess),
               Error);
}

}  // namespace
}  // namespace finch
