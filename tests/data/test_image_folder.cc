// Image folders: PNG, BMP and JPEG files written with stb_image_write into class subfolders,
// channel conversion, resizing, and the rejections (undecodable file, empty class folder, ...).
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "data/dataloader.h"
#include "data/image_folder.h"
#include "data/transforms.h"
#include "tests/temp_dir.h"
#include "tests/error_text.h"

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

using namespace finch;
using finch::test::TempDir;
using namespace finch::data;
namespace fs = std::filesystem;

namespace {

// Interleaved H×W×C pixels: channel c of (y, x) = 20y + 7x + 60c (mod 256).
std::vector<uint8_t> pattern(int h, int w, int c) {
  std::vector<uint8_t> px(size_t(h * w * c));
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int k = 0; k < c; ++k) px[size_t((y * w + x) * c + k)] = uint8_t((20 * y + 7 * x + 60 * k) % 256);
  return px;
}

void write_image(const fs::path& p, int h, int w, int c) {
  fs::create_directories(p.parent_path());
  const std::vector<uint8_t> px = pattern(h, w, c);
  const std::string ext = p.extension().string();
  int ok = 0;
  if (ext == ".png") ok = stbi_write_png(p.c_str(), w, h, c, px.data(), w * c);
  if (ext == ".bmp") ok = stbi_write_bmp(p.c_str(), w, h, c, px.data());
  if (ext == ".jpg") ok = stbi_write_jpg(p.c_str(), w, h, c, px.data(), 100);
  ASSERT_TRUE(ok) << p;
}

}  // namespace

TEST(ImageFolder, ScansSortedClassesAndDecodesPngAndBmpExactly) {
  TempDir d("scan");
  write_image(d.path / "zebra" / "b.png", 4, 5, 3);
  write_image(d.path / "zebra" / "a.bmp", 4, 5, 3);
  write_image(d.path / "ant" / "x.png", 4, 5, 3);
  std::ofstream(d.path / "ant" / "notes.txt") << "not an image, skipped";
  ImageFolderDataset ds(d.str());
  EXPECT_EQ(ds.classes(), (std::vector<std::string>{"ant", "zebra"}));
  ASSERT_EQ(ds.size(), 3);
  EXPECT_EQ(ds.label(0), 0);
  EXPECT_EQ(ds.label(1), 1);
  EXPECT_EQ(fs::path(ds.files()[1]).filename(), "a.bmp");  // files sorted within a class
  Generator g;
  for (int64_t i = 0; i < 3; ++i) {
    Sample s = ds.get(i, g);
    ASSERT_EQ(s.image.shape(), (Shape{3, 4, 5}));
    EXPECT_EQ(s.image.dtype(), DType::u8);
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t y = 0; y < 4; ++y)
        for (int64_t x = 0; x < 5; ++x)
          ASSERT_EQ(s.image.get({c, y, x}), double((20 * y + 7 * x + 60 * c) % 256)) << ds.files()[size_t(i)];
  }
}

TEST(ImageFolder, ConvertsChannelsAndResizes) {
  TempDir d("convert");
  write_image(d.path / "gray" / "g.png", 6, 4, 1);
  write_image(d.path / "rgb" / "c.png", 6, 4, 3);
  Generator g;
  // Gray → RGB replicates the channel.
  ImageFolderDataset rgb(d.str(), {3, 0, 0});
  Tensor gr = rgb.get(0, g).image;
  ASSERT_EQ(gr.shape(), (Shape{3, 6, 4}));
  for (int64_t c = 1; c < 3; ++c) EXPECT_EQ(gr.select(0, c).to_vector<int>(), gr.select(0, 0).to_vector<int>());
  // RGB → gray: stb's luminance (77 R + 150 G + 29 B) >> 8.
  ImageFolderDataset gray(d.str(), {1, 0, 0});
  Tensor cg = gray.get(1, g).image;
  ASSERT_EQ(cg.shape(), (Shape{1, 6, 4}));
  const int r = (20 * 2 + 7 * 3) % 256, gg = (20 * 2 + 7 * 3 + 60) % 256, b = (20 * 2 + 7 * 3 + 120) % 256;
  EXPECT_EQ(cg.get({0, 2, 3}), double((77 * r + 150 * gg + 29 * b) >> 8));
  // Resizing is the bilinear resize of the decoded image.
  ImageFolderDataset big(d.str(), {3, 9, 7});
  Tensor rb = big.get(1, g).image;
  ASSERT_EQ(rb.shape(), (Shape{3, 9, 7}));
  EXPECT_EQ(rb.to_vector<int>(), resize_bilinear(rgb.get(1, g).image, 9, 7).to_vector<int>());
  // Eager loading stacks them.
  LabeledImages all = load_image_folder(d.str(), {1, 8, 8});
  EXPECT_EQ(all.images.shape(), (Shape{2, 1, 8, 8}));
  EXPECT_EQ(all.labels.to_vector<int>(), (std::vector<int>{0, 1}));
  EXPECT_EQ(all.classes, (std::vector<std::string>{"gray", "rgb"}));
}

TEST(ImageFolder, DecodesJpegClosely) {
  TempDir d("jpeg");
  write_image(d.path / "a" / "p.jpg", 16, 16, 3);
  Generator g;
  Tensor img = ImageFolderDataset(d.str()).get(0, g).image;
  ASSERT_EQ(img.shape(), (Shape{3, 16, 16}));
  // JPEG is lossy (and chroma-subsampled); quality 100 on a smooth ramp stays within a few levels.
  double err = 0;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 16; ++y)
      for (int64_t x = 0; x < 16; ++x)
        err += std::abs(img.get({c, y, x}) - double((20 * y + 7 * x + 60 * c) % 256));
  EXPECT_LT(err / (3 * 16 * 16), 20.0);  // the ramp wraps at 256, which blurs a few edges
}

TEST(ImageFolder, Rejections) {
  TempDir d("bad");
  EXPECT_ERROR_HAS(ImageFolderDataset((d.path / "absent").string()), "does not exist");
  EXPECT_ERROR_HAS(ImageFolderDataset(d.str()), "has no class subfolders");
  write_image(d.path / "cat" / "ok.png", 4, 4, 3);
  fs::create_directories(d.path / "dog");
  std::ofstream(d.path / "dog" / "readme.txt") << "x";
  EXPECT_ERROR_HAS(ImageFolderDataset(d.str()), "empty class folder " + (d.path / "dog").string());
  // An undecodable image: the error names the file and stb's reason, at get() time.
  std::ofstream(d.path / "dog" / "broken.png") << "this is not a PNG file";
  ImageFolderDataset ds(d.str());
  Generator g;
  EXPECT_ERROR_HAS(ds.get(1, g), (d.path / "dog" / "broken.png").string() + ": cannot decode the image (stb_image: ");
  EXPECT_ERROR_HAS(load_image_folder(d.str()), "broken.png");
  EXPECT_ERROR_HAS(decode_image((d.path / "missing.png").string(), 3), "missing file");
  EXPECT_ERROR_HAS(ImageFolderDataset(d.str(), {2, 0, 0}), "expected channels 1 or 3, found 2");
  EXPECT_ERROR_HAS(ImageFolderDataset(d.str(), {3, 8, 0}), "both height and width");
  // Mixed sizes need a target size for eager loading.
  fs::remove(d.path / "dog" / "broken.png");
  write_image(d.path / "dog" / "wide.png", 4, 6, 3);
  EXPECT_ERROR_HAS(load_image_folder(d.str()), "set ImageFolderOptions height and width");
  EXPECT_NO_THROW(load_image_folder(d.str(), {3, 5, 5}));
}

TEST(ImageFolder, LoadsThroughDataLoaderWorkersAndReportsBrokenFiles) {
  TempDir d("loader");
  for (int k = 0; k < 3; ++k)
    for (int i = 0; i < 4; ++i) {
      const char cls[3] = {'c', char('0' + k), 0}, file[7] = {'i', char('0' + i), '.', 'p', 'n', 'g', 0};
      write_image(d.path / cls / file, 5 + i, 6, 3);
    }
  auto ds = std::make_shared<ImageFolderDataset>(
      d.str(), ImageFolderOptions{3, 8, 8}, transforms::compose({transforms::to_float(), transforms::random_hflip()}));
  std::vector<std::vector<float>> runs;
  for (int workers : {0, 2}) {
    DataLoaderOptions o;
    o.batch_size = 5;
    o.num_workers = workers;
    DataLoader dl(ds, o);
    dl.start_epoch(2);
    std::vector<float> all;
    int64_t n = 0;
    for (Batch b; dl.next(b);) {
      auto v = b.images.to_vector<float>();
      all.insert(all.end(), v.begin(), v.end());
      n += b.labels.numel();
    }
    EXPECT_EQ(n, 12);
    runs.push_back(all);
  }
  EXPECT_EQ(runs[0], runs[1]);
  // A file that stops decoding after the scan: the worker's error reaches the consumer.
  std::ofstream(ds->files()[7], std::ios::trunc) << "garbage";
  DataLoaderOptions o;
  o.batch_size = 4;
  o.num_workers = 2;
  DataLoader dl(ds, o);
  dl.start_epoch(0);
  EXPECT_ERROR_HAS(
      for (Batch b; dl.next(b);) {}, ds->files()[7] + ": cannot decode the image");
}
