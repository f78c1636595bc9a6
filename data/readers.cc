// The MNIST-like (IDX) and CIFAR binary readers.
#include "data/readers.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "data/idx.h"

namespace finch::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kMnistHelp =
    "Fashion-MNIST: `apt-get install dataset-fashion-mnist` puts it in "
    "/usr/share/datasets/fashion-mnist/; MNIST: the four *-ubyte.gz files from "
    "http://yann.lecun.com/exdb/mnist/";
constexpr const char* kCifarHelp =
    "get the binary version from https://www.cs.toronto.edu/~kriz/cifar.html, or build it from "
    "the JPEG tree in ../shared/data/cifar10/ with ../shared/tools/cifar-jpeg-to-bin";

void require_dir(const std::string& dir, const char* what, const char* help) {
  if (!fs::is_directory(dir)) fail(what, ": dataset folder ", dir, " does not exist; ", help);
}

// The first of `names` that exists in dir, or an error listing what was looked for.
std::string find_one_of(const std::string& dir, const std::vector<std::string>& names, const char* what) {
  std::string tried;
  for (const auto& n : names) {
    const fs::path p = fs::path(dir) / n;
    if (fs::is_regular_file(p)) return p.string();
    tried += (tried.empty() ? "" : " or ") + n;
  }
  fail(what, ": missing file ", (fs::path(dir) / names.front()).string(), " (looked for ", tried,
       " in ", dir, ")");
}

std::vector<uint8_t> read_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(what, ": cannot open ", path, ": ", std::strerror(errno));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Non-empty lines of a class-names file; empty when the file is absent. A present file with the
// wrong number of names is an error (it would mislabel every class after the first mismatch).
std::vector<std::string> read_names(const std::string& dir, const std::string& name, int64_t expect,
                                    const char* what) {
  const fs::path p = fs::path(dir) / name;
  if (!fs::is_regular_file(p)) return {};
  std::ifstream in(p);
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  if (int64_t(out.size()) != expect)
    fail(what, ": ", p.string(), " should list ", expect, " class names, found ", out.size());
  return out;
}

// Appends the records of one CIFAR .bin file: `label_bytes` label bytes then 3072 pixels each.
// `which` picks the label byte to keep; labels must be < num_classes.
void read_cifar_file(const std::string& path, int64_t label_bytes, int64_t which, int64_t num_classes,
                     const char* what, std::vector<uint8_t>& pixels, std::vector<int64_t>& labels) {
  constexpr int64_t kPixels = 3 * 32 * 32;
  const int64_t rec = label_bytes + kPixels;
  const std::vector<uint8_t> bytes = read_file(path, what);
  const int64_t n = int64_t(bytes.size()) / rec;
  if (bytes.empty() || int64_t(bytes.size()) % rec != 0)
    fail(what, ": ", path, ": truncated record: expected a size that is a positive multiple of the ",
         rec, "-byte record (", label_bytes, " label byte", label_bytes > 1 ? "s" : "", " + 3072 pixels), found ",
         bytes.size(), " bytes");
  const size_t base = pixels.size();
  pixels.resize(base + size_t(n * kPixels));
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = bytes.data() + i * rec;
    const int64_t y = r[which];
    if (y >= num_classes)
      fail(what, ": ", path, ": record ", i, " has label ", y, ", outside 0..", num_classes - 1);
    labels.push_back(y);
    // The record's pixels are already R, G, B planes of 32×32 rows: exactly [C, H, W].
    std::memcpy(pixels.data() + base + size_t(i * kPixels), r + label_bytes, kPixels);
  }
}

LabeledImages pack_cifar(const std::vector<uint8_t>& pixels, const std::vector<int64_t>& labels,
                         std::vector<std::string> classes) {
  const int64_t n = int64_t(labels.size());
  LabeledImages out;
  out.images = empty({n, 3, 32, 32}, DType::u8);
  std::memcpy(out.images.raw_data(), pixels.data(), pixels.size());
  out.labels = from_vector<int64_t>(labels, {n});
  out.classes = std::move(classes);
  return out;
}

}  // namespace

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

LabeledImages load_mnist_like(const std::string& dir, bool train, int64_t num_classes) {
  const char* what = "load_mnist_like";
  require_dir(dir, what, kMnistHelp);
  const std::string prefix = train ? "train" : "t10k";
  const std::string ip = find_one_of(
      dir, {prefix + "-images-idx3-ubyte.gz", prefix + "-images-idx3-ubyte", prefix + "-images.idx3-ubyte"}, what);
  const std::string lp = find_one_of(
      dir, {prefix + "-labels-idx1-ubyte.gz", prefix + "-labels-idx1-ubyte", prefix + "-labels.idx1-ubyte"}, what);
  Tensor x = read_idx(ip);
  Tensor y = read_idx(lp);
  // The magic number 0x00000803 means U8 with 3 dims; 0x00000801 U8 with 1 dim.
  if (x.dtype() != DType::u8 || x.dim() != 3)
    fail(what, ": ", ip, ": wrong magic number: expected 0x00000803 (U8 images [N, H, W]), found ",
         dtype_name(x.dtype()), " data of shape ", shape_str(x.shape()));
  if (y.dtype() != DType::u8 || y.dim() != 1)
    fail(what, ": ", lp, ": wrong magic number: expected 0x00000801 (U8 labels [N]), found ",
         dtype_name(y.dtype()), " data of shape ", shape_str(y.shape()));
  if (y.size(0) != x.size(0))
    fail(what, ": ", lp, " holds ", y.size(0), " labels but ", ip, " holds ", x.size(0), " images");
  const uint8_t* py = y.data<uint8_t>();
  for (int64_t i = 0; i < y.size(0); ++i)
    if (py[i] >= num_classes)
      fail(what, ": ", lp, ": label ", int(py[i]), " of item ", i, " is outside 0..", num_classes - 1);
  LabeledImages out;
  out.images = x.reshape({x.size(0), 1, x.size(1), x.size(2)});
  out.labels = y.to(DType::i64);
  return out;
}

LabeledImages load_cifar10(const std::string& dir, bool train) {
  const char* what = "load_cifar10";
  require_dir(dir, what, kCifarHelp);
  std::vector<std::string> files;
  if (train)
    for (int b = 1; b <= 5; ++b) files.push_back("data_batch_" + std::to_string(b) + ".bin");
  else
    files.push_back("test_batch.bin");
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  for (const auto& f : files)
    read_cifar_file(find_one_of(dir, {f}, what), 1, 0, 10, what, pixels, labels);
  return pack_cifar(pixels, labels, read_names(dir, "batches.meta.txt", 10, what));
}

LabeledImages load_cifar100(const std::string& dir, bool train, bool fine) {
  const char* what = "load_cifar100";
  require_dir(dir, what, kCifarHelp);
  std::vector<uint8_t> pixels;
  std::vector<int64_t> labels;
  const int64_t k = fine ? 100 : 20;
  read_cifar_file(find_one_of(dir, {train ? "train.bin" : "test.bin"}, what), 2, fine ? 1 : 0, k, what,
                  pixels, labels);
  return pack_cifar(pixels, labels,
                    read_names(dir, fine ? "fine_label_names.txt" : "coarse_label_names.txt", k, what));
}

}  // namespace finch::data
