// The MNIST-like and CIFAR readers on small files written in the published formats, every
// rejection, and one check on the real Fashion-MNIST when it is installed.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/idx.h"
#include "data/readers.h"
#include "framework/random.h"
#include "tests/temp_dir.h"
#include "tests/error_text.h"

using namespace finch;
using finch::test::TempDir;
using namespace finch::data;
namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

// CIFAR records: `label_bytes` labels then 3072 pixels with pixel p of plane c = (7i + 3c + p) % 256.
std::vector<uint8_t> cifar_records(const std::vector<std::vector<uint8_t>>& labels) {
  std::vector<uint8_t> out;
  for (size_t i = 0; i < labels.size(); ++i) {
    out.insert(out.end(), labels[i].begin(), labels[i].end());
    for (int c = 0; c < 3; ++c)
      for (int p = 0; p < 1024; ++p) out.push_back(uint8_t((7 * i + 3 * c + p) % 256));
  }
  return out;
}

void write_mnist(const TempDir& d, const std::string& prefix, int64_t n, bool gz, Generator& g,
                 Tensor* images = nullptr, Tensor* labels = nullptr) {
  Tensor x = randint(0, 256, {n, 6, 5}, g, DType::u8);
  Tensor y = randint(0, 10, {n}, g, DType::u8);
  const std::string ext = gz ? ".gz" : "";
  write_idx(d / (prefix + "-images-idx3-ubyte" + ext), x, gz);
  write_idx(d / (prefix + "-labels-idx1-ubyte" + ext), y, gz);
  if (images) *images = x;
  if (labels) *labels = y;
}

}  // namespace

TEST(MnistLike, ReadsTrainAndTestPlainAndGzip) {
  Generator g(5);
  for (bool gz : {false, true}) {
    TempDir d(gz ? "mnist_gz" : "mnist");
    Tensor x, y, xt, yt;
    write_mnist(d, "train", 7, gz, g, &x, &y);
    write_mnist(d, "t10k", 3, gz, g, &xt, &yt);
    LabeledImages tr = load_mnist_like(d.str(), true);
    ASSERT_EQ(tr.images.shape(), (Shape{7, 1, 6, 5}));
    EXPECT_EQ(tr.images.dtype(), DType::u8);
    EXPECT_EQ(tr.labels.dtype(), DType::i64);
    EXPECT_EQ(tr.images.to_vector<int>(), x.to_vector<int>());
    EXPECT_EQ(tr.labels.to_vector<int>(), y.to_vector<int>());
    EXPECT_TRUE(tr.classes.empty());
    LabeledImages te = load_mnist_like(d.str(), false);
    EXPECT_EQ(te.images.shape(), (Shape{3, 1, 6, 5}));
    EXPECT_EQ(te.labels.to_vector<int>(), yt.to_vector<int>());
  }
  EXPECT_EQ(fashion_mnist_classes().size(), 10u);
}

TEST(MnistLike, Rejections) {
  Generator g(6);
  TempDir d("mnist_bad");
  EXPECT_ERROR_HAS(load_mnist_like(d / "nope", true), "apt-get install dataset-fashion-mnist");
  EXPECT_ERROR_HAS(load_mnist_like(d / "nope", true), "does not exist");
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "missing file");
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "train-images-idx3-ubyte");
  // Wrong magic number: the images file holds I32 data (magic 0x00000C03).
  write_idx(d / "train-images-idx3-ubyte", randint(0, 9, {4, 6, 5}, g, DType::i32));
  write_idx(d / "train-labels-idx1-ubyte", randint(0, 9, {4}, g, DType::u8));
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "train-images-idx3-ubyte: wrong magic number: expected 0x00000803");
  // A corrupt leading byte is caught by the IDX reader (names the file).
  write_bytes(d / "train-images-idx3-ubyte", {1, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 5});
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "train-images-idx3-ubyte");
  // Truncated data.
  write_bytes(d / "train-images-idx3-ubyte", {0, 0, 8, 3, 0, 0, 0, 4, 0, 0, 0, 6, 0, 0, 0, 5, 1, 2, 3});
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "truncated");
  // Count mismatch and label out of range.
  write_idx(d / "train-images-idx3-ubyte", randint(0, 256, {4, 6, 5}, g, DType::u8));
  write_idx(d / "train-labels-idx1-ubyte", randint(0, 9, {3}, g, DType::u8));
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "holds 3 labels but");
  write_idx(d / "train-labels-idx1-ubyte", from_vector<uint8_t>({1, 2, 10, 3}, {4}));
  EXPECT_ERROR_HAS(load_mnist_like(d.str(), true), "label 10 of item 2 is outside 0..9");
  EXPECT_NO_THROW(load_mnist_like(d.str(), true, 11));
}

TEST(Cifar10, ReadsBatchesInOrderWithClassNames) {
  TempDir d("c10");
  std::vector<int> want_labels;
  for (int b = 1; b <= 5; ++b) {
    std::vector<std::vector<uint8_t>> labels;
    for (int i = 0; i < b; ++i) {  // batch b holds b records
      labels.push_back({uint8_t((b + i) % 10)});
      want_labels.push_back((b + i) % 10);
    }
    write_bytes(d / ("data_batch_" + std::to_string(b) + ".bin"), cifar_records(labels));
  }
  write_bytes(d / "test_batch.bin", cifar_records({{9}, {0}}));
  std::ofstream(d / "batches.meta.txt") << "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
  LabeledImages tr = load_cifar10(d.str(), true);
  ASSERT_EQ(tr.images.shape(), (Shape{15, 3, 32, 32}));
  EXPECT_EQ(tr.labels.to_vector<int>(), want_labels);
  ASSERT_EQ(tr.classes.size(), 10u);
  EXPECT_EQ(tr.classes[9], "truck");
  // Image 2 is record 1 of data_batch_2.bin (batch 1 holds one record): R plane pixel
  // (y=2, x=5) = 7·1 + 0 + 69.
  EXPECT_EQ(tr.images.get({2, 0, 2, 5}), double((7 * 1 + 0 + 2 * 32 + 5) % 256));
  EXPECT_EQ(tr.images.get({2, 2, 31, 31}), double((7 * 1 + 6 + 1023) % 256));  // B plane, last pixel
  LabeledImages te = load_cifar10(d.str(), false);
  EXPECT_EQ(te.labels.to_vector<int>(), (std::vector<int>{9, 0}));
  EXPECT_EQ(te.images.get({0, 1, 0, 0}), 3.0);  // G plane of record 0 starts at 3
}

TEST(Cifar10, Rejections) {
  TempDir d("c10_bad");
  EXPECT_ERROR_HAS(load_cifar10(d / "absent", true), "https://www.cs.toronto.edu/~kriz/cifar.html");
  EXPECT_ERROR_HAS(load_cifar10(d / "absent", true), "cifar-jpeg-to-bin");
  EXPECT_ERROR_HAS(load_cifar10(d.str(), false), "missing file " + (d / "test_batch.bin"));
  // Truncated record: one byte short.
  std::vector<uint8_t> recs = cifar_records({{1}, {2}});
  recs.pop_back();
  write_bytes(d / "test_batch.bin", recs);
  EXPECT_ERROR_HAS(load_cifar10(d.str(), false), "test_batch.bin: truncated record");
  EXPECT_ERROR_HAS(load_cifar10(d.str(), false), "found 6145 bytes");
  write_bytes(d / "test_batch.bin", {});
  EXPECT_ERROR_HAS(load_cifar10(d.str(), false), "truncated record");
  // Label out of range.
  write_bytes(d / "test_batch.bin", cifar_records({{1}, {10}}));
  EXPECT_ERROR_HAS(load_cifar10(d.str(), false), "record 1 has label 10, outside 0..9");
  // Class-name file with the wrong count.
  write_bytes(d / "test_batch.bin", cifar_records({{1}}));
  std::ofstream(d / "batches.meta.txt") << "a\nb\n";
  EXPECT_ERROR_HAS(load_cifar10(d.str(), false), "should list 10 class names, found 2");
  // Train needs all five batches.
  fs::remove(d / "batches.meta.txt");
  write_bytes(d / "data_batch_1.bin", cifar_records({{1}}));
  EXPECT_ERROR_HAS(load_cifar10(d.str(), true), "missing file " + (d / "data_batch_2.bin"));
}

TEST(Cifar100, FineAndCoarseLabels) {
  TempDir d("c100");
  write_bytes(d / "train.bin", cifar_records({{3, 99}, {19, 0}, {0, 42}}));
  LabeledImages fine = load_cifar100(d.str(), true, true);
  EXPECT_EQ(fine.labels.to_vector<int>(), (std::vector<int>{99, 0, 42}));
  ASSERT_EQ(fine.images.shape(), (Shape{3, 3, 32, 32}));
  EXPECT_EQ(fine.images.get({2, 0, 0, 1}), double((14 + 1) % 256));
  EXPECT_EQ(load_cifar100(d.str(), true, false).labels.to_vector<int>(), (std::vector<int>{3, 19, 0}));
  std::ofstream names(d / "coarse_label_names.txt");
  for (int k = 0; k < 20; ++k) names << "super" << k << "\n";
  names.close();
  EXPECT_EQ(load_cifar100(d.str(), true, false).classes[19], "super19");
  EXPECT_TRUE(load_cifar100(d.str(), true, true).classes.empty());  // no fine_label_names.txt
  // Rejections: coarse label 20, fine label 100, truncated, missing test.bin.
  write_bytes(d / "train.bin", cifar_records({{20, 1}}));
  EXPECT_ERROR_HAS(load_cifar100(d.str(), true, false), "record 0 has label 20, outside 0..19");
  write_bytes(d / "train.bin", cifar_records({{1, 100}}));
  EXPECT_ERROR_HAS(load_cifar100(d.str(), true, true), "record 0 has label 100, outside 0..99");
  write_bytes(d / "train.bin", std::vector<uint8_t>(3073, 0));
  EXPECT_ERROR_HAS(load_cifar100(d.str(), true), "3074-byte record");
  EXPECT_ERROR_HAS(load_cifar100(d.str(), false), "missing file " + (d / "test.bin"));
}

TEST(FashionMnist, RealTrainSetHas6000OfEachClass) {
  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::is_directory(dir)) GTEST_SKIP() << dir << " is absent (apt-get install dataset-fashion-mnist)";
  LabeledImages tr = load_mnist_like(dir, true);
  ASSERT_EQ(tr.images.shape(), (Shape{60000, 1, 28, 28}));
  std::vector<int64_t> hist(10, 0);
  for (int64_t y : tr.labels.to_vector<int64_t>()) ++hist[size_t(y)];
  EXPECT_EQ(hist, std::vector<int64_t>(10, 6000));
  LabeledImages te = load_mnist_like(dir, false);
  EXPECT_EQ(te.images.shape(), (Shape{10000, 1, 28, 28}));
}
