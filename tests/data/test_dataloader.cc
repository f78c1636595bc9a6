// DataLoader: bit-identical batches across worker counts, epoch-seeded shuffling, drop_last,
// bounded prefetch, exception propagation, early destruction; datasets and the stratified split.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <set>
#include <thread>

#include "data/dataloader.h"
#include "data/transforms.h"

using namespace finch;
using namespace finch::data;

namespace {

std::shared_ptr<const Dataset> augmented(int64_t n, uint64_t seed = 1) {
  Generator g(seed);
  LabeledImages d;
  d.images = randint(0, 256, {n, 3, 8, 8}, g, DType::u8);
  d.labels = randint(0, 4, {n}, g, DType::i64);
  return std::make_shared<TensorDataset>(
      d, transforms::compose({transforms::to_float(), transforms::random_crop(8, 8, 2),
                              transforms::random_hflip(), transforms::color_jitter(0.3f, 0.3f)}));
}

std::vector<Batch> run_epoch(DataLoader& dl, int64_t epoch) {
  dl.start_epoch(epoch);
  std::vector<Batch> out;
  for (Batch b; dl.next(b);) out.push_back(b);
  return out;
}

void expect_same(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].images.shape(), b[i].images.shape());
    EXPECT_EQ(a[i].images.to_vector<float>(), b[i].images.to_vector<float>()) << "batch " << i;
    EXPECT_EQ(a[i].labels.to_vector<int64_t>(), b[i].labels.to_vector<int64_t>()) << "batch " << i;
  }
}

// Labels are the index; get() can throw at one index, sleep, and counts its calls.
class ProbeDataset : public Dataset {
 public:
  ProbeDataset(int64_t n, int64_t throw_at = -1, int sleep_us = 0) : n_(n), throw_at_(throw_at), sleep_us_(sleep_us) {}
  int64_t size() const override { return n_; }
  int64_t label(int64_t i) const override { return i; }
  Sample get(int64_t i, Generator&) const override {
    ++calls;
    if (sleep_us_) std::this_thread::sleep_for(std::chrono::microseconds(sleep_us_));
    if (i == throw_at_) fail("ProbeDataset: sample ", i, " is corrupt");
    return {full({1, 2, 2}, double(i)), i};
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, throw_at_;
  int sleep_us_;
};

}  // namespace

TEST(DataLoader, BatchesAreBitIdenticalForAnyWorkerCount) {
  auto ds = augmented(53);
  std::vector<std::vector<Batch>> runs;
  for (int workers : {0, 1, 3}) {
    DataLoaderOptions o;
    o.batch_size = 8;
    o.num_workers = workers;
    o.seed = 42;
    DataLoader dl(ds, o);
    auto e0 = run_epoch(dl, 0);
    auto e1 = run_epoch(dl, 1);
    e0.insert(e0.end(), e1.begin(), e1.end());
    runs.push_back(e0);
  }
  ASSERT_EQ(runs[0].size(), 14u);
  expect_same(runs[0], runs[1]);
  expect_same(runs[0], runs[2]);
  EXPECT_EQ(runs[0][0].images.dtype(), DType::f32);
  EXPECT_EQ(runs[0][0].images.shape(), (Shape{8, 3, 8, 8}));
  EXPECT_EQ(runs[0][6].images.shape(), (Shape{5, 3, 8, 8}));  // 53 = 6·8 + 5
}

TEST(DataLoader, ShufflingIsPerEpochAndReproducible) {
  auto ds = std::make_shared<ProbeDataset>(40);
  DataLoaderOptions o;
  o.batch_size = 7;
  o.seed = 9;
  DataLoader a(ds, o), b(ds, o);
  auto labels_of = [](const std::vector<Batch>& bs) {
    std::vector<int64_t> out;
    for (const auto& b : bs) {
      auto v = b.labels.to_vector<int64_t>();
      out.insert(out.end(), v.begin(), v.end());
    }
    return out;
  };
  const auto e0 = labels_of(run_epoch(a, 0)), e1 = labels_of(run_epoch(a, 1));
  EXPECT_NE(e0, e1);
  EXPECT_EQ(labels_of(run_epoch(b, 1)), e1);  // resuming at epoch 1 reproduces it
  EXPECT_EQ(labels_of(run_epoch(b, 0)), e0);
  EXPECT_EQ(e0, a.epoch_order(0));
  std::vector<int64_t> sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 40; ++i) EXPECT_EQ(sorted[size_t(i)], i);  // a permutation
  o.seed = 10;
  EXPECT_NE(DataLoader(ds, o).epoch_order(0), e0);
  o.shuffle = false;
  const auto plain = labels_of([&] { DataLoader c(ds, o); return run_epoch(c, 3); }());
  for (int64_t i = 0; i < 40; ++i) EXPECT_EQ(plain[size_t(i)], i);
  // Images follow their labels (the probe fills sample i's F32 image with i).
  DataLoader d(ds, o);
  auto bs = run_epoch(d, 0);
  EXPECT_EQ(bs[1].images.get({2, 0, 1, 1}), 9.0);
}

TEST(DataLoader, DropLast) {
  auto ds = std::make_shared<ProbeDataset>(10);
  DataLoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 2;
  DataLoader keep(ds, o);
  EXPECT_EQ(keep.num_batches(), 3);
  auto k = run_epoch(keep, 0);
  ASSERT_EQ(k.size(), 3u);
  EXPECT_EQ(k[2].labels.numel(), 2);
  o.drop_last = true;
  DataLoader drop(ds, o);
  EXPECT_EQ(drop.num_batches(), 2);
  auto d = run_epoch(drop, 0);
  ASSERT_EQ(d.size(), 2u);
  for (const auto& b : d) EXPECT_EQ(b.labels.numel(), 4);
}

TEST(DataLoader, PrefetchIsBounded) {
  auto ds = std::make_shared<ProbeDataset>(100);
  DataLoaderOptions o;
  o.batch_size = 1;
  o.num_workers = 2;
  o.prefetch_factor = 2;
  DataLoader dl(ds, o);
  dl.start_epoch(0);
  Batch b;
  ASSERT_TRUE(dl.next(b));
  // After one batch is consumed the workers may build batches 1..4 (2 workers × 2) and no more:
  // wait until they have, then check that they stopped there.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (ds->calls.load() < 5 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(ds->calls.load(), 5);
  ASSERT_TRUE(dl.next(b));  // consuming one more frees exactly one slot
  while (ds->calls.load() < 6 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(ds->calls.load(), 6);
}

TEST(DataLoader, WorkerExceptionsReachTheConsumer) {
  for (int workers : {0, 1, 3}) {
    SCOPED_TRACE(workers);
    auto ds = std::make_shared<ProbeDataset>(30, 17);
    DataLoaderOptions o;
    o.batch_size = 4;
    o.shuffle = false;
    o.num_workers = workers;
    DataLoader dl(ds, o);
    dl.start_epoch(0);
    Batch b;
    int64_t got = 0;
    std::string msg;
    try {
      while (dl.next(b)) ++got;
    } catch (const Error& e) {
      msg = e.what();
    }
    EXPECT_EQ(got, 4);  // batches 0..3 arrive; batch 4 holds sample 17
    EXPECT_NE(msg.find("ProbeDataset: sample 17 is corrupt"), std::string::npos) << msg;
    EXPECT_FALSE(dl.next(b));  // the epoch ended with the error
    EXPECT_THROW(run_epoch(dl, 1), Error);  // a new epoch starts cleanly and meets sample 17 again
  }
}

TEST(DataLoader, EarlyDestructionAndRestartMidEpoch) {
  auto ds = std::make_shared<ProbeDataset>(400, -1, 1000);
  DataLoaderOptions o;
  o.batch_size = 2;
  o.num_workers = 3;
  {
    DataLoader dl(ds, o);
    dl.start_epoch(0);
    Batch b;
    ASSERT_TRUE(dl.next(b));
    dl.start_epoch(5);  // abandons epoch 0 mid-way
    ASSERT_TRUE(dl.next(b));
    const std::vector<int64_t> order = dl.epoch_order(5);
    EXPECT_EQ(b.labels.to_vector<int64_t>(), std::vector<int64_t>(order.begin(), order.begin() + 2));
  }  // destructor joins the workers mid-epoch
  // Only what was consumed or prefetched was built (two epochs' first few batches, each capped at
  // 3 workers × 2 batches × 2 samples ahead), not the 400-sample epoch.
  EXPECT_LT(ds->calls.load(), 40);
}

TEST(DataLoader, RejectsBadUse) {
  auto ds = std::make_shared<ProbeDataset>(4);
  DataLoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(DataLoader(ds, o), Error);
  o.batch_size = 2;
  DataLoader dl(ds, o);
  Batch b;
  EXPECT_THROW(dl.next(b), Error);  // no start_epoch yet
  // Samples of different sizes in one batch.
  LabeledImages li;
  li.images = zeros({2, 1, 4, 4}, DType::u8);
  li.labels = zeros({2}, DType::i64);
  auto mixed = std::make_shared<TensorDataset>(li, [](const Tensor& x, Generator& g) {
    return crop(x, 0, 0, 2 + int64_t(g.below(2)), 2);  // 2x2 or 3x2 at random
  });
  o.shuffle = false;
  DataLoader m(mixed, o);
  std::string msg;
  for (int e = 0; e < 8 && msg.empty(); ++e) {
    m.start_epoch(e);
    try {
      while (m.next(b)) {}
    } catch (const Error& err) {
      msg = err.what();
    }
  }
  EXPECT_NE(msg.find("add a resize or crop transform"), std::string::npos) << msg;
}

TEST(DataLoader, U8SamplesAreScaledLikeToFloat) {
  LabeledImages li;
  li.images = from_vector<uint8_t>({0, 255, 51, 102}, {2, 1, 1, 2});
  li.labels = from_vector<int64_t>({3, 1}, {2});
  DataLoaderOptions o;
  o.batch_size = 2;
  o.shuffle = false;
  DataLoader dl(std::make_shared<TensorDataset>(li), o);
  auto bs = run_epoch(dl, 0);
  ASSERT_EQ(bs.size(), 1u);
  EXPECT_EQ(bs[0].images.to_vector<float>(), (std::vector<float>{0, 1, 0.2f, 0.4f}));
  EXPECT_EQ(bs[0].labels.to_vector<int64_t>(), (std::vector<int64_t>{3, 1}));
}

TEST(Split, StratifiedProportionalAndSeeded) {
  std::vector<int64_t> labels;
  for (int64_t k = 0; k < 3; ++k)
    for (int64_t i = 0; i < 10 * (k + 1); ++i) labels.push_back(k);
  std::shuffle(labels.begin(), labels.end(), std::mt19937(3));
  Split s = stratified_split(labels, 0.2, 77);
  EXPECT_EQ(s.val.size(), 2u + 4u + 6u);
  EXPECT_EQ(s.train.size(), 60u - 12u);
  std::vector<int64_t> val_count(3, 0);
  for (int64_t i : s.val) ++val_count[size_t(labels[size_t(i)])];
  EXPECT_EQ(val_count, (std::vector<int64_t>{2, 4, 6}));
  std::set<int64_t> all(s.train.begin(), s.train.end());
  all.insert(s.val.begin(), s.val.end());
  EXPECT_EQ(all.size(), 60u);  // disjoint and complete
  EXPECT_TRUE(std::is_sorted(s.val.begin(), s.val.end()));
  EXPECT_EQ(stratified_split(labels, 0.2, 77).val, s.val);
  EXPECT_NE(stratified_split(labels, 0.2, 78).val, s.val);
  EXPECT_THROW(stratified_split(labels, 1.5, 1), Error);
  // Through a Dataset (labels i % 2: 10 of each class) and a SubsetDataset view.
  LabeledImages li;
  li.images = zeros({20, 1, 1, 1});
  li.labels = empty({20}, DType::i64);
  for (int64_t i = 0; i < 20; ++i) li.labels.set({i}, double(i % 2));
  auto ds = std::make_shared<TensorDataset>(li);
  Split s2 = stratified_split(*ds, 0.3, 1);
  ASSERT_EQ(s2.val.size(), 6u);  // round(0.3 · 10) = 3 per class
  int64_t odd = 0;
  for (int64_t i : s2.val) odd += i % 2;
  EXPECT_EQ(odd, 3);
  SubsetDataset sub(ds, s2.train);
  Generator g;
  EXPECT_EQ(sub.get(0, g).label, s2.train[0] % 2);
  EXPECT_EQ(sub.label(1), s2.train[1] % 2);
  EXPECT_THROW(SubsetDataset(ds, {20}), Error);
}
