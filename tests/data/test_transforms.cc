// Transforms against hand-computed numbers and PyTorch/torchvision goldens
// (tests/golden/make_transform_goldens.py), plus the seeded random augmentations.
#include <gtest/gtest.h>

#include <cmath>

#include "data/transforms.h"
#include "framework/safetensors.h"
#include "tests/error_text.h"

using namespace finch;
using finch::test::error_of;
using namespace finch::data;

namespace {

Tensor golden(const std::string& name) {
  static const SafetensorsFile f =
      load_safetensors(std::string(FINCH_TEST_DATA_DIR) + "/golden/data/transform_goldens.safetensors");
  return f.at(name);
}

void expect_close(const Tensor& got, const Tensor& want, double atol) {
  ASSERT_EQ(got.shape(), want.shape());
  const auto g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], w[i], atol + 1e-5 * std::abs(w[i])) << "at " << i;
}

// A [C, H, W] image whose value encodes its position: 100c + 10y + x.
Tensor coded(int64_t C, int64_t H, int64_t W, DType dt = DType::f32) {
  Tensor t = empty({C, H, W}, dt);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) t.set({c, y, x}, double(dt == DType::u8 ? 40 * c + 5 * y + x : 100 * c + 10 * y + x));
  return t;
}

}  // namespace

TEST(Transforms, ToFloatScalesU8By255) {
  Tensor u = from_vector<uint8_t>({0, 51, 255, 128}, {1, 2, 2});
  Tensor f = to_float(u);
  EXPECT_EQ(f.dtype(), DType::f32);
  EXPECT_EQ(f.to_vector<float>(), (std::vector<float>{0.0f, 0.2f, 1.0f, 128.0f / 255.0f}));
}

TEST(Transforms, NormalizePerChannel) {
  Tensor x = from_vector<float>({1, 2, 3, 4, 10, 20, 30, 40}, {2, 2, 2});
  Tensor y = normalize(x, {1.0f, 20.0f}, {2.0f, 10.0f});
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{0, 0.5f, 1, 1.5f, -1, 0, 1, 2}));
  EXPECT_NE(error_of([&] { normalize(x, {1, 2, 3}, {1, 1, 1}); }).find("expected 2 mean values"), std::string::npos);
  EXPECT_NE(error_of([&] { normalize(x.to(DType::u8), {0}, {1}); }).find("to_float first"), std::string::npos);
}

TEST(Transforms, HflipMirrorsColumnsForEveryDtype) {
  for (DType dt : {DType::u8, DType::f32, DType::f64}) {
    Tensor x = coded(2, 3, 4, dt);
    Tensor y = hflip(x);
    for (int64_t c = 0; c < 2; ++c)
      for (int64_t r = 0; r < 3; ++r)
        for (int64_t k = 0; k < 4; ++k) EXPECT_EQ(y.get({c, r, k}), x.get({c, r, 3 - k}));
    EXPECT_EQ(y.dtype(), dt);
  }
}

TEST(Transforms, CropWithZeroPadding) {
  Tensor x = coded(2, 4, 5);
  // Window from (-2, 3), 4x4: rows -2..1, cols 3..6; only rows 0..1 × cols 3..4 come from x.
  Tensor y = crop(x, -2, 3, 4, 4);
  ASSERT_EQ(y.shape(), (Shape{2, 4, 4}));
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t r = 0; r < 4; ++r)
      for (int64_t k = 0; k < 4; ++k) {
        const int64_t sy = r - 2, sx = k + 3;
        const double want = (sy >= 0 && sy < 4 && sx < 5) ? x.get({c, sy, sx}) : 0.0;
        EXPECT_EQ(y.get({c, r, k}), want) << c << " " << r << " " << k;
      }
  // Entirely outside: all zeros.
  EXPECT_EQ(crop(x, 10, 10, 2, 2).to_vector<float>(), std::vector<float>(8, 0.0f));
}

TEST(Transforms, CenterCropLikeTorchvision) {
  Tensor x = coded(1, 5, 6);
  Tensor y = center_crop(x, 3, 3);  // top = round(1.0) = 1, left = round(1.5) = 2 (half to even)
  EXPECT_EQ(y.get({0, 0, 0}), x.get({0, 1, 2}));
  EXPECT_EQ(y.get({0, 2, 2}), x.get({0, 3, 4}));
}

TEST(Transforms, RandomCropIsThePaddedCifarRecipe) {
  Tensor x = coded(3, 32, 32);
  auto t = transforms::random_crop(32, 32, 4);
  bool saw_shift = false;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    Generator g(seed), replay(seed);
    Tensor y = t(x, g);
    const int64_t top = int64_t(replay.below(9)) - 4, left = int64_t(replay.below(9)) - 4;
    EXPECT_EQ(y.to_vector<float>(), crop(x, top, left, 32, 32).to_vector<float>());
    saw_shift |= top != 0 || left != 0;
    ASSERT_EQ(y.shape(), (Shape{3, 32, 32}));
  }
  EXPECT_TRUE(saw_shift);
}

TEST(Transforms, RandomHflipFlipsAboutHalfTheTime) {
  Tensor x = coded(1, 2, 3);
  auto t = transforms::random_hflip(0.5f);
  Generator g(7);
  int flips = 0;
  for (int i = 0; i < 1000; ++i) flips += t(x, g).to_vector<float>() != x.to_vector<float>();
  EXPECT_GT(flips, 430);
  EXPECT_LT(flips, 570);
  Generator g0(1);
  EXPECT_EQ(transforms::random_hflip(0.0f)(x, g0).to_vector<float>(), x.to_vector<float>());
  EXPECT_EQ(transforms::random_hflip(1.0f)(x, g0).to_vector<float>(), hflip(x).to_vector<float>());
}

TEST(Transforms, ResizeHandComputed) {
  // One row [0, 10] to width 4: sources clamp(0.5·(x + 0.5) − 0.5) = 0, 0.25, 0.75, 1.25→edge.
  Tensor x = from_vector<float>({0, 10}, {1, 1, 2});
  EXPECT_EQ(resize_bilinear(x, 1, 4).to_vector<float>(), (std::vector<float>{0, 2.5f, 7.5f, 10}));
  // 4 → 2 averages neighbour pairs (source 0.5 and 2.5).
  Tensor z = from_vector<float>({0, 4, 8, 12}, {1, 1, 4});
  EXPECT_EQ(resize_bilinear(z, 1, 2).to_vector<float>(), (std::vector<float>{2, 10}));
  // U8 rounds to nearest.
  Tensor u = from_vector<uint8_t>({0, 5}, {1, 1, 2});
  EXPECT_EQ(resize_bilinear(u, 1, 4).to_vector<int>(), (std::vector<int>{0, 1, 4, 5}));
}

TEST(Transforms, ResizeMatchesTorchInterpolate) {
  for (const char* name : {"resize_down", "resize_up", "resize_mixed"}) {
    SCOPED_TRACE(name);
    const Tensor x = golden(std::string(name) + ".x"), want = golden(std::string(name) + ".y");
    expect_close(resize_bilinear(x, want.size(1), want.size(2)), want, 1e-6);
    // F64 goes through the same formula.
    expect_close(resize_bilinear(x.to(DType::f64), want.size(1), want.size(2)), want, 1e-6);
  }
}

TEST(Transforms, RotateMatchesTorchvision) {
  expect_close(rotate(golden("rotate_30.x"), 30.0), golden("rotate_30.y"), 1e-5);
  expect_close(rotate(golden("rotate_m17.x"), -17.5), golden("rotate_m17.y"), 1e-5);
}

TEST(Transforms, RotateQuarterTurnIsExact) {
  Tensor x = coded(2, 5, 5);
  Tensor y = rotate(x, 90.0);  // counter-clockwise: out[y][x] = in[x][W − 1 − y]
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t r = 0; r < 5; ++r)
      for (int64_t k = 0; k < 5; ++k) EXPECT_NEAR(y.get({c, r, k}), x.get({c, k, 4 - r}), 1e-9);
  EXPECT_EQ(rotate(x, 0.0).to_vector<float>(), x.to_vector<float>());
}

TEST(Transforms, BrightnessAndContrast) {
  Tensor x = from_vector<float>({0.2f, 0.4f, 0.6f, 0.8f}, {1, 2, 2});
  expect_close(adjust_brightness(x, 1.5f), from_vector<float>({0.3f, 0.6f, 0.9f, 1.0f}, {1, 2, 2}), 1e-6);
  // Mean 0.5; factor 0.5 pulls halfway to the mean.
  expect_close(adjust_contrast(x, 0.5f), from_vector<float>({0.35f, 0.45f, 0.55f, 0.65f}, {1, 2, 2}), 1e-6);
  // RGB uses the gray mean 0.2989 R + 0.587 G + 0.114 B: R=1, G=0, B=0 → mean 0.2989.
  Tensor rgb = zeros({3, 1, 1});
  rgb.set({0, 0, 0}, 1.0);
  Tensor c = adjust_contrast(rgb, 0.0f);
  for (int64_t k = 0; k < 3; ++k) EXPECT_NEAR(c.get({k, 0, 0}), 0.2989, 1e-6);
  // U8 saturates at 255.
  Tensor u = from_vector<uint8_t>({100, 200}, {1, 1, 2});
  EXPECT_EQ(adjust_brightness(u, 1.5f).to_vector<int>(), (std::vector<int>{150, 255}));
}

TEST(Transforms, ComposeAndSeededJitterAndRotationAreReproducible) {
  Tensor x = to_float(coded(3, 8, 8, DType::u8));
  auto t = transforms::compose({transforms::random_rotation(15), transforms::color_jitter(0.4f, 0.4f),
                                transforms::random_crop(6, 6, 1), transforms::random_hflip(),
                                transforms::normalize({0.5f, 0.5f, 0.5f}, {0.25f, 0.25f, 0.25f})});
  Generator a(11), b(11), c(12);
  const auto ya = t(x, a).to_vector<float>();
  EXPECT_EQ(ya, t(x, b).to_vector<float>());
  EXPECT_NE(ya, t(x, c).to_vector<float>());
  EXPECT_EQ(ya.size(), 3u * 6 * 6);
}

TEST(Transforms, RejectBadImages) {
  EXPECT_NE(error_of([] { hflip(zeros({4, 4})); }).find("expected an image [C, H, W], found shape [4, 4]"),
            std::string::npos);
  EXPECT_NE(error_of([] { resize_bilinear(zeros({1, 4, 4}, DType::i32), 2, 2); }).find("I32"), std::string::npos);
  EXPECT_NE(error_of([] { resize_bilinear(zeros({1, 4, 4}), 0, 2); }).find("positive"), std::string::npos);
  Generator g;
  EXPECT_NE(error_of([&] { transforms::random_crop(10, 10)(zeros({1, 4, 4}), g); }).find("smaller than"),
            std::string::npos);
}
