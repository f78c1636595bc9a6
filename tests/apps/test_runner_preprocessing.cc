// The deployed runners' image preprocessing (apps/runtime/image_input.h: finch_run and sorter,
// runtime only) equals the training-side pipeline `finch run` uses on an image folder
// (data::decode_image → to_float → normalize) bit for bit, for PNG/JPEG/BMP, gray and RGB, at the
// program's size and resized — the reason the sorter's decisions equal `finch run`'s.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "apps/runtime/image_input.h"
#include "data/image_folder.h"
#include "data/transforms.h"
#include "tests/temp_dir.h"

#include "stb_image_write.h"  // the implementation is in test_photo_folder.cc

namespace finch::test {
namespace {

TEST(RunnerPreprocessing, EqualsTheDataPipelineBitForBit) {
  TempDir dir("prep");
  std::mt19937 rng(5);
  apps::ImageInput in;
  in.shape = {1, 3, 12, 10};
  in.mean = {0.485f, 0.456f, 0.406f};
  in.std = {0.229f, 0.224f, 0.225f};
  const int sizes[][2] = {{10, 12}, {17, 9}, {5, 5}, {31, 40}};
  int checked = 0;
  for (const char* ext : {".png", ".jpg", ".bmp"})
    for (const auto& wh : sizes)
      for (int comp : {1, 3}) {
        const int w = wh[0], h = wh[1];
        std::vector<unsigned char> px(size_t(w * h * comp));
        for (auto& p : px) p = (unsigned char)(rng() % 256);
        const std::string f = dir / ("i" + std::to_string(checked) + ext);
        const std::string e = ext;
        if (e == ".png") ASSERT_NE(stbi_write_png(f.c_str(), w, h, comp, px.data(), w * comp), 0);
        else if (e == ".jpg") ASSERT_NE(stbi_write_jpg(f.c_str(), w, h, comp, px.data(), 90), 0);
        else ASSERT_NE(stbi_write_bmp(f.c_str(), w, h, comp, px.data()), 0);
        const Tensor runner = apps::load_image(f, in);
        const Tensor pipeline =
            data::normalize(data::to_float(data::decode_image(f, 3, in.shape[2], in.shape[3])), in.mean, in.std);
        ASSERT_EQ(runner.numel(), pipeline.numel()) << f;
        EXPECT_EQ(std::memcmp(runner.data<float>(), pipeline.contiguous().data<float>(), size_t(runner.numel()) * 4), 0)
            << f;
        ++checked;
      }
  EXPECT_EQ(checked, 24);
}

}  // namespace
}  // namespace finch::test
