// The image transforms: plain loops over [C, H, W], templated on the element type.
#include "data/transforms.h"

#include <algorithm>
#include <cmath>

namespace finch::data {

namespace {

constexpr double kPi = 3.14159265358979323846;

// Checks a [C, H, W] image of a supported dtype and returns it contiguous.
Tensor checked(const Tensor& image, const char* op) {
  if (!image.defined()) fail(op, ": expected an image [C, H, W], found an undefined tensor");
  if (image.dim() != 3) fail(op, ": expected an image [C, H, W], found shape ", shape_str(image.shape()));
  const DType t = image.dtype();
  if (t != DType::u8 && t != DType::f32 && t != DType::f64)
    fail(op, ": expected a U8, F32 or F64 image, found ", dtype_name(t));
  return image.contiguous();
}

// Calls fn(T{}) with T the image's element type (uint8_t, float or double).
template <typename F>
auto visit_image(DType t, F&& fn) {
  if (t == DType::u8) return fn(uint8_t{});
  if (t == DType::f32) return fn(float{});
  return fn(double{});
}

// Converts a computed value back to the element type: U8 rounds to nearest and saturates.
template <typename T>
T store(double v) {
  if constexpr (std::is_same_v<T, uint8_t>) {
    return uint8_t(std::clamp(std::nearbyint(v), 0.0, 255.0));
  } else {
    return T(v);
  }
}

template <typename T>
constexpr double value_max() {
  return std::is_same_v<T, uint8_t> ? 255.0 : 1.0;
}

}  // namespace

Tensor to_float(const Tensor& image) {
  if (!image.defined()) fail("to_float: expected an image, found an undefined tensor");
  if (image.dtype() != DType::u8) return image.to(DType::f32).contiguous();
  const Tensor src = image.contiguous();
  Tensor out = empty(src.shape(), DType::f32);
  const uint8_t* s = src.data<uint8_t>();
  float* d = out.data<float>();
  for (int64_t i = 0; i < src.numel(); ++i) d[i] = float(s[i]) / 255.0f;
  return out;
}

Tensor normalize(const Tensor& image, const std::vector<float>& mean, const std::vector<float>& std) {
  const Tensor src = checked(image, "normalize");
  if (src.dtype() == DType::u8)
    fail("normalize: expected a float image, found U8 (apply to_float first so the mean/std are "
         "on the 0..1 scale)");
  const int64_t C = src.size(0), HW = src.size(1) * src.size(2);
  auto per_channel = [&](const std::vector<float>& v, const char* name) {
    if (int64_t(v.size()) != C && v.size() != 1)
      fail("normalize: expected ", C, " ", name, " values (one per channel) or 1, found ", v.size());
  };
  per_channel(mean, "mean");
  per_channel(std, "std");
  for (float s : std)
    if (s == 0.0f) fail("normalize: a std of 0 would divide by zero");
  Tensor out = empty(src.shape(), src.dtype());
  visit_image(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    T* d = out.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      const T m = T(mean[mean.size() == 1 ? 0 : size_t(c)]);
      const T inv = T(1) / T(std[std.size() == 1 ? 0 : size_t(c)]);
      for (int64_t i = 0; i < HW; ++i) d[c * HW + i] = (s[c * HW + i] - m) * inv;
    }
  });
  return out;
}

Tensor hflip(const Tensor& image) {
  const Tensor src = checked(image, "hflip");
  const int64_t rows = src.size(0) * src.size(1), W = src.size(2);
  Tensor out = empty(src.shape(), src.dtype());
  visit_image(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    T* d = out.data<T>();
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t x = 0; x < W; ++x) d[r * W + x] = s[r * W + (W - 1 - x)];
  });
  return out;
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t h, int64_t w) {
  const Tensor src = checked(image, "crop");
  if (h <= 0 || w <= 0) fail("crop: expected a positive crop size, found ", h, "x", w);
  const int64_t C = src.size(0), H = src.size(1), W = src.size(2);
  Tensor out = zeros({C, h, w}, src.dtype());
  visit_image(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    T* d = out.data<T>();
    // Only the overlap of the window with the image is copied; the rest stays zero.
    const int64_t y0 = std::max<int64_t>(0, -top), y1 = std::min<int64_t>(h, H - top);
    const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min<int64_t>(w, W - left);
    if (y0 >= y1 || x0 >= x1) return;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t y = y0; y < y1; ++y)
        std::copy(s + (c * H + top + y) * W + left + x0, s + (c * H + top + y) * W + left + x1,
                  d + (c * h + y) * w + x0);
  });
  return out;
}

Tensor center_crop(const Tensor& image, int64_t h, int64_t w) {
  const Tensor src = checked(image, "center_crop");
  // torchvision: top = int(round((H - h) / 2)) with Python's round (half to even).
  const int64_t top = int64_t(std::nearbyint(double(src.size(1) - h) / 2.0));
  const int64_t left = int64_t(std::nearbyint(double(src.size(2) - w) / 2.0));
  return crop(src, top, left, h, w);
}

Tensor rotate(const Tensor& image, double degrees) {
  const Tensor src = checked(image, "rotate");
  const int64_t C = src.size(0), H = src.size(1), W = src.size(2);
  const double th = degrees * kPi / 180.0, cs = std::cos(th), sn = std::sin(th);
  const double cx = 0.5 * double(W - 1), cy = 0.5 * double(H - 1);
  Tensor out = empty(src.shape(), src.dtype());
  visit_image(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    T* d = out.data<T>();
    for (int64_t y = 0; y < H; ++y)
      for (int64_t x = 0; x < W; ++x) {
        // Inverse mapping with y pointing down: a counter-clockwise turn of the picture samples
        // the source at R(−θ)·(p − centre) + centre in y-up terms.
        const double dx = double(x) - cx, dy = double(y) - cy;
        const double sx = cs * dx - sn * dy + cx, sy = sn * dx + cs * dy + cy;
        const double fx = std::floor(sx), fy = std::floor(sy);
        const int64_t x0 = int64_t(fx), y0 = int64_t(fy);
        const double lx = sx - fx, ly = sy - fy;
        const double wts[4] = {(1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx};
        const int64_t xs[4] = {x0, x0 + 1, x0, x0 + 1}, ys[4] = {y0, y0, y0 + 1, y0 + 1};
        for (int64_t c = 0; c < C; ++c) {
          double v = 0;
          for (int k = 0; k < 4; ++k)
            if (xs[k] >= 0 && xs[k] < W && ys[k] >= 0 && ys[k] < H && wts[k] != 0.0)
              v += wts[k] * double(s[(c * H + ys[k]) * W + xs[k]]);
          d[(c * H + y) * W + x] = store<T>(v);
        }
      }
  });
  return out;
}

Tensor adjust_brightness(const Tensor& image, float factor) {
  const Tensor src = checked(image, "adjust_brightness");
  if (factor < 0) fail("adjust_brightness: expected a factor >= 0, found ", factor);
  Tensor out = empty(src.shape(), src.dtype());
  visit_image(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    T* d = out.data<T>();
    for (int64_t i = 0; i < src.numel(); ++i)
      d[i] = store<T>(std::clamp(double(s[i]) * double(factor), 0.0, value_max<T>()));
  });
  return out;
}

Tensor adjust_contrast(const Tensor& image, float factor) {
  const Tensor src = checked(image, "adjust_contrast");
  if (factor < 0) fail("adjust_contrast: expected a factor >= 0, found ", factor);
  const int64_t C = src.size(0), HW = src.size(1) * src.size(2);
  if (C != 1 && C != 3) fail("adjust_contrast: expected 1 or 3 channels, found ", C);
  Tensor out = empty(src.shape(), src.dtype());
  visit_image(src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* s = src.data<T>();
    T* d = out.data<T>();
    double sum = 0;
    for (int64_t i = 0; i < HW; ++i)
      sum += C == 1 ? double(s[i]) : 0.2989 * double(s[i]) + 0.587 * double(s[HW + i]) + 0.114 * double(s[2 * HW + i]);
    const double mean = sum / double(HW);
    for (int64_t i = 0; i < src.numel(); ++i)
      d[i] = store<T>(std::clamp(factor * double(s[i]) + (1.0 - factor) * mean, 0.0, value_max<T>()));
  });
  return out;
}

namespace transforms {

Transform compose(std::vector<Transform> steps) {
  return [steps = std::move(steps)](const Tensor& image, Generator& gen) {
    Tensor x = image;
    for (const auto& t : steps) x = t(x, gen);
    return x;
  };
}

Transform to_float() {
  return [](const Tensor& image, Generator&) { return data::to_float(image); };
}

Transform normalize(std::vector<float> mean, std::vector<float> std) {
  return [mean = std::move(mean), std = std::move(std)](const Tensor& image, Generator&) {
    return data::normalize(image, mean, std);
  };
}

Transform resize(int64_t h, int64_t w) {
  return [h, w](const Tensor& image, Generator&) { return resize_bilinear(image, h, w); };
}

Transform center_crop(int64_t h, int64_t w) {
  return [h, w](const Tensor& image, Generator&) { return data::center_crop(image, h, w); };
}

Transform random_crop(int64_t h, int64_t w, int64_t padding) {
  if (h <= 0 || w <= 0 || padding < 0)
    fail("random_crop: expected a positive size and padding >= 0, found ", h, "x", w, " padding ", padding);
  return [h, w, padding](const Tensor& image, Generator& gen) {
    const Tensor src = checked(image, "random_crop");
    const int64_t ph = src.size(1) + 2 * padding, pw = src.size(2) + 2 * padding;
    if (ph < h || pw < w)
      fail("random_crop: the padded image is ", ph, "x", pw, ", smaller than the ", h, "x", w, " crop");
    const int64_t top = int64_t(gen.below(uint64_t(ph - h + 1)));
    const int64_t left = int64_t(gen.below(uint64_t(pw - w + 1)));
    return crop(src, top - padding, left - padding, h, w);
  };
}

Transform random_hflip(float p) {
  return [p](const Tensor& image, Generator& gen) { return gen.uniform() < p ? hflip(image) : image; };
}

Transform random_rotation(double degrees) {
  if (degrees < 0) fail("random_rotation: expected degrees >= 0, found ", degrees);
  return [degrees](const Tensor& image, Generator& gen) {
    const double angle = -degrees + 2.0 * degrees * gen.uniform_double();
    return rotate(image, angle);
  };
}

Transform color_jitter(float brightness, float contrast) {
  if (brightness < 0 || contrast < 0)
    fail("color_jitter: expected brightness and contrast >= 0, found ", brightness, " and ", contrast);
  return [brightness, contrast](const Tensor& image, Generator& gen) {
    const float b = std::max(0.0f, 1 - brightness) + (1 + brightness - std::max(0.0f, 1 - brightness)) * gen.uniform();
    const float c = std::max(0.0f, 1 - contrast) + (1 + contrast - std::max(0.0f, 1 - contrast)) * gen.uniform();
    return adjust_contrast(adjust_brightness(image, b), c);
  };
}

}  // namespace transforms

}  // namespace finch::data
