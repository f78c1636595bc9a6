// Series and token datasets, z-score statistics, and the DataLoader's collate: padding of
// variable-length sequences with lengths, I64 token batches, stacked regression targets.
#include <gtest/gtest.h>

#include <cmath>

#include "data/dataloader.h"
#include "data/series_dataset.h"
#include "tests/error_text.h"

using namespace finch;
using namespace finch::data;

namespace {

Tensor series(std::vector<float> v, int64_t C) { return from_vector<float>(v, {C, int64_t(v.size()) / C}); }

Sample seq(Tensor image, int64_t label = 0, Tensor target = {}) {
  Sample s;
  s.image = std::move(image);
  s.label = label;
  s.target = std::move(target);
  return s;
}

}  // namespace

TEST(Collate, PadsVariableLengthSeriesAtTheEndWithLengths) {
  const Batch b = collate({seq(series({1, 2, 3, 4}, 2), 1), seq(series({5, 6, 7, 8, 9, 10}, 2), 0)});
  EXPECT_EQ(b.images.shape(), (Shape{2, 2, 3}));
  // Sample 0 is [[1, 2], [3, 4]]: each channel padded with a zero at its end.
  EXPECT_EQ(b.images.to_vector<float>(), (std::vector<float>{1, 2, 0, 3, 4, 0, 5, 6, 7, 8, 9, 10}));
  ASSERT_TRUE(b.lengths.defined());
  EXPECT_EQ(b.lengths.dtype(), DType::i64);
  EXPECT_EQ(b.lengths.to_vector<int64_t>(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(b.labels.to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_FALSE(b.targets.defined());
}

TEST(Collate, EqualLengthsLeaveLengthsUndefined) {
  const Batch b = collate({seq(series({1, 2}, 1)), seq(series({3, 4}, 1))});
  EXPECT_EQ(b.images.shape(), (Shape{2, 1, 2}));
  EXPECT_FALSE(b.lengths.defined());
}

TEST(Collate, ConvertsU8AndNonContiguousSamples) {
  // A [2, 3] view of a [3, 2] tensor: collate copies its values, not its storage order.
  const Tensor t = from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2}).transpose(0, 1);
  const Batch b = collate({seq(t), seq(from_vector<uint8_t>({255, 0}, {2, 1}))});
  EXPECT_EQ(b.images.dtype(), DType::f32);
  EXPECT_EQ(b.images.to_vector<float>(), (std::vector<float>{1, 3, 5, 2, 4, 6, 1, 0, 0, 0, 0, 0}));
  EXPECT_EQ(b.lengths.to_vector<int64_t>(), (std::vector<int64_t>{3, 1}));
}

TEST(Collate, TokensStayI64AndPadWithZero) {
  const Batch b = collate({seq(from_vector<int64_t>({7, 8, 9}, {3})), seq(from_vector<int64_t>({5}, {1}))});
  EXPECT_EQ(b.images.dtype(), DType::i64);
  EXPECT_EQ(b.images.to_vector<int64_t>(), (std::vector<int64_t>{7, 8, 9, 5, 0, 0}));
  EXPECT_EQ(b.lengths.to_vector<int64_t>(), (std::vector<int64_t>{3, 1}));
}

TEST(Collate, StacksTargetsAndRejectsMismatches) {
  const Batch b = collate({seq(series({1}, 1), 0, from_vector<float>({0.5f, 1.5f}, {1, 2})),
                           seq(series({2}, 1), 0, from_vector<float>({2.5f, 3.5f}, {1, 2}))});
  EXPECT_EQ(b.targets.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(b.targets.to_vector<float>(), (std::vector<float>{0.5f, 1.5f, 2.5f, 3.5f}));
  EXPECT_ERROR_HAS(collate({seq(series({1}, 1), 0, from_vector<float>({1}, {1})), seq(series({2}, 1))}),
                   "sample 1 has no regression target but sample 0 in the same batch has one");
  EXPECT_ERROR_HAS(collate({seq(series({1}, 1), 0, from_vector<float>({1}, {1})),
                            seq(series({2}, 1), 0, from_vector<float>({1, 2}, {2}))}),
                   "sample 1 has target shape [2] but sample 0 has [1]");
  EXPECT_ERROR_HAS(collate({seq(series({1, 2}, 1)), seq(series({1, 2}, 2))}),
                   "sequences may differ only in their last (time) axis");
  EXPECT_ERROR_HAS(collate({seq(series({1, 2}, 1)), seq(from_vector<int64_t>({1, 2}, {1, 2}))}),
                   "sample 1 is I64 but sample 0 in the same batch is F32");
  // Images of different sizes are still an error, not padded.
  EXPECT_ERROR_HAS(collate({seq(zeros({1, 2, 2})), seq(zeros({1, 2, 3}))}), "add a resize or crop transform");
  EXPECT_ERROR_HAS(collate({}), "expected at least one sample");
}

TEST(SeriesDataset, LoaderBatchesVariableLengthSeriesAndSplitsByClass) {
  SeriesSet set;
  set.classes = {"a", "b"};
  for (int i = 0; i < 10; ++i) {
    std::vector<float> v(size_t(2 * (i + 1)), float(i));
    set.series.push_back(series(v, 2));  // T = i + 1
    set.labels.push_back(i % 2);
  }
  auto ds = std::make_shared<SeriesDataset>(set);
  DataLoader dl(ds, {.batch_size = 4, .shuffle = false});
  dl.start_epoch(0);
  Batch b;
  ASSERT_TRUE(dl.next(b));
  EXPECT_EQ(b.images.shape(), (Shape{4, 2, 4}));
  EXPECT_EQ(b.lengths.to_vector<int64_t>(), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(b.images.get({1, 1, 1}), 1.0);
  EXPECT_EQ(b.images.get({1, 1, 2}), 0.0);  // padding
  // Same batches with workers.
  DataLoader dw(ds, {.batch_size = 4, .shuffle = true, .num_workers = 2, .seed = 3});
  DataLoader d0(ds, {.batch_size = 4, .shuffle = true, .num_workers = 0, .seed = 3});
  dw.start_epoch(1);
  d0.start_epoch(1);
  for (Batch x, y; d0.next(x);) {
    ASSERT_TRUE(dw.next(y));
    EXPECT_EQ(x.images.to_vector<float>(), y.images.to_vector<float>());
    EXPECT_EQ(x.lengths.defined(), y.lengths.defined());
  }
  const Split sp = stratified_split(*ds, 0.4, 7);
  EXPECT_EQ(sp.val.size(), 4u);
  int odd = 0;
  for (int64_t i : sp.val) odd += ds->label(i);
  EXPECT_EQ(odd, 2);  // two of each class
  SeriesSet bad = set;
  bad.labels[3] = 2;
  EXPECT_ERROR_HAS(SeriesDataset{bad}, "label 2 of series 3 is outside the 2 classes");
  bad = set;
  bad.series[2] = series({1, 2, 3}, 1);
  EXPECT_ERROR_HAS(SeriesDataset{bad}, "series 2 has 1 channels but series 0 has 2");
}

TEST(SeriesDataset, RegressionTargetsReachTheBatch) {
  SeriesSet set;
  set.series = {series({1, 2}, 1), series({3, 4, 5}, 1)};
  set.labels = {0, 0};
  set.targets = {from_vector<float>({1}, {1}), from_vector<float>({2}, {1})};
  DataLoader dl(std::make_shared<SeriesDataset>(set), {.batch_size = 2, .shuffle = false});
  dl.start_epoch(0);
  Batch b;
  ASSERT_TRUE(dl.next(b));
  EXPECT_EQ(b.targets.to_vector<float>(), (std::vector<float>{1, 2}));
  EXPECT_EQ(b.lengths.to_vector<int64_t>(), (std::vector<int64_t>{2, 3}));
}

TEST(ChannelStats, FitApplyInvert) {
  const ChannelStats st = ChannelStats::fit({series({1, 3, 10, 10}, 2), series({5, 10}, 2)});
  EXPECT_DOUBLE_EQ(st.mean[0], 3.0);
  EXPECT_NEAR(st.std[0], std::sqrt(8.0 / 3.0), 1e-12);
  EXPECT_DOUBLE_EQ(st.std[1], 1.0);  // constant channel: std 1, not a division by zero
  const Tensor x = series({1, 3, 10, 10}, 2);
  const Tensor y = st.apply(x);
  EXPECT_FLOAT_EQ(y.get({1, 0}), 0.f);
  const auto back = st.invert(y).to_vector<float>();
  for (size_t i = 0; i < back.size(); ++i) EXPECT_NEAR(back[i], x.to_vector<float>()[i], 1e-5);
}

TEST(TokenDataset, ValidatesSequences) {
  EXPECT_ERROR_HAS(TokenDataset({{1}, {}}, {0, 1}), "sequence 1 is empty");
  EXPECT_ERROR_HAS(TokenDataset({{1, -2}}, {0}), "sequence 0 has the negative token id -2");
  EXPECT_ERROR_HAS(TokenDataset({{1}}, {0, 1}), "expected 1 labels (one per sequence), found 2");
  EXPECT_ERROR_HAS(TokenDataset({{1}}, {3}, {"a", "b"}), "label 3 of sequence 0 is outside the 2 classes");
}
