// train_cifar's photo folders (--dataset folder): DIR/<class>/* without train/ and test/ is split
// 80/20 per class (every fifth file by name is a test image), DIR/train + DIR/test are used as
// they are, and the photo augmentations (--rotation, --brightness, --contrast) are seeded.
#include <gtest/gtest.h>

#include <filesystem>

#include "apps/lib/datasets.h"
#include "apps/lib/train_options.h"
#include "framework/random.h"
#include "tests/temp_dir.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "stb_image_write.h"

namespace finch::test {
namespace {

namespace fs = std::filesystem;

// An 8×8 RGB PNG whose every byte is `value`.
void write_flat(const std::string& path, int value) {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<unsigned char> px(8 * 8 * 3, (unsigned char)value);
  ASSERT_NE(stbi_write_png(path.c_str(), 8, 8, 3, px.data(), 8 * 3), 0);
}

apps::DataOptions folder_options(const std::string& dir) {
  apps::DataOptions o;
  o.dataset = "folder";
  o.data_dir = dir;
  o.image_size = 8;
  o.mean = {0.0f};
  o.std = {1.0f};
  return o;
}

// The first pixel of each image, back on the 0..255 scale (mean 0, std 1 normalization).
std::vector<int> first_pixels(const data::Dataset& d) {
  Generator g(0);
  std::vector<int> v;
  for (int64_t i = 0; i < d.size(); ++i) v.push_back(int(d.get(i, g).image.data<float>()[0] * 255.0f + 0.5f));
  return v;
}

TEST(PhotoFolder, WithoutTrainAndTestFoldersEveryFifthFileOfAClassIsATestImage) {
  TempDir dir("photos");
  // Class a: 7 files (values 10..16), class b: 10 files (values 100..109); names sort by value.
  for (int i = 0; i < 7; ++i) write_flat(dir / ("a/img" + std::to_string(i) + ".png"), 10 + i);
  for (int i = 0; i < 10; ++i) write_flat(dir / ("b/img" + std::to_string(i) + ".png"), 100 + i);
  apps::DataOptions o = folder_options(dir.str());
  o.augment = false;
  const apps::DataBundle d = apps::load_data(o, true);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(first_pixels(*d.test), (std::vector<int>{14, 104, 109}));
  EXPECT_EQ(first_pixels(*d.train), (std::vector<int>{10, 11, 12, 13, 15, 16, 100, 101, 102, 103, 105, 106, 107, 108}));
}

TEST(PhotoFolder, TrainAndTestFoldersAreUsedAsTheyAre) {
  TempDir dir("photos");
  for (int i = 0; i < 3; ++i) write_flat(dir / ("train/a/" + std::to_string(i) + ".png"), 20 + i);
  write_flat(dir / "test/a/0.png", 77);
  apps::DataOptions o = folder_options(dir.str());
  o.augment = false;
  const apps::DataBundle d = apps::load_data(o, true);
  EXPECT_EQ(first_pixels(*d.train), (std::vector<int>{20, 21, 22}));
  EXPECT_EQ(first_pixels(*d.test), (std::vector<int>{77}));
}

TEST(PhotoFolder, PhotoAugmentationsAreSeededAndChangeTheImages) {
  TempDir dir("photos");
  std::vector<unsigned char> px(8 * 8 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = (unsigned char)(i * 7 % 251);
  fs::create_directories(dir / "train/a");
  fs::create_directories(dir / "test/a");
  ASSERT_NE(stbi_write_png((dir / "train/a/0.png").c_str(), 8, 8, 3, px.data(), 24), 0);
  ASSERT_NE(stbi_write_png((dir / "test/a/0.png").c_str(), 8, 8, 3, px.data(), 24), 0);
  apps::DataOptions o = folder_options(dir.str());
  const auto sample = [&](const apps::DataOptions& opt, uint64_t seed) {
    Generator g(seed);
    return apps::load_data(opt, true).train->get(0, g).image.to_vector<float>();
  };
  const auto plain = sample(o, 3);
  o.rotation = 30;
  o.brightness = 0.4f;
  o.contrast = 0.4f;
  const auto photo = sample(o, 3);
  EXPECT_EQ(photo, sample(o, 3)) << "same seed, same augmentation";
  EXPECT_NE(photo, plain);
  EXPECT_NE(photo, sample(o, 4));
}

}  // namespace
}  // namespace finch::test
