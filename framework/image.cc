// stb_image decoding and the bilinear resize (see image.h).
#include "framework/image.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <memory>
#include <type_traits>
#include <vector>

#include "framework/error.h"

#define STB_IMAGE_IMPLEMENTATION
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#include "stb_image.h"

namespace finch::image {

Tensor decode_image(const std::string& path, int channels, int64_t height, int64_t width) {
  if (channels != 1 && channels != 3) fail("decode_image: expected channels 1 or 3, found ", channels);
  int w = 0, h = 0, n = 0;
  // A small file can declare a huge image (a decompression bomb): refuse it before decoding.
  constexpr int64_t kMaxPixels = int64_t(1) << 27;
  if (stbi_info(path.c_str(), &w, &h, &n) && int64_t(w) * h > kMaxPixels)
    fail("decode_image: ", path, ": expected an image of at most ", kMaxPixels, " pixels, found ", w, "x", h);
  // stb converts to the requested channel count itself (luminance for gray, replication for RGB).
  std::unique_ptr<stbi_uc, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &n, channels), stbi_image_free);
  if (!px) {
    if (!std::filesystem::exists(path)) fail("decode_image: missing file ", path);
    fail("decode_image: ", path, ": cannot decode the image (stb_image: ", stbi_failure_reason(), ")");
  }
  // Interleaved [H, W, C] → planar [C, H, W].
  Tensor out = empty({channels, h, w}, DType::u8);
  uint8_t* d = out.data<uint8_t>();
  const int64_t HW = int64_t(h) * w;
  for (int64_t i = 0; i < HW; ++i)
    for (int c = 0; c < channels; ++c) d[c * HW + i] = px.get()[i * channels + c];
  if (height > 0 && width > 0 && (height != h || width != w)) out = resize_bilinear(out, height, width);
  return out;
}

Tensor resize_bilinear(const Tensor& image, int64_t h, int64_t w) {
  const char* op = "resize_bilinear";
  if (!image.defined()) fail(op, ": expected an image [C, H, W], found an undefined tensor");
  if (image.dim() != 3) fail(op, ": expected an image [C, H, W], found shape ", shape_str(image.shape()));
  const DType t = image.dtype();
  if (t != DType::u8 && t != DType::f32 && t != DType::f64)
    fail(op, ": expected a U8, F32 or F64 image, found ", dtype_name(t));
  const Tensor src = image.contiguous();
  if (h <= 0 || w <= 0) fail("resize_bilinear: expected a positive target size, found ", h, "x", w);
  const int64_t C = src.size(0), H = src.size(1), W = src.size(2);
  if (H == h && W == w) return src.clone();
  // PyTorch's source index (area_pixel_compute_source_index, align_corners=False):
  // src = scale · (dst + 0.5) − 0.5 with scale = in/out in float, clamped below at 0.
  struct Tap {
    int64_t i0, i1;
    float l0, l1;
  };
  auto taps = [](int64_t in, int64_t out) {
    std::vector<Tap> t(static_cast<size_t>(out));
    const float scale = float(in) / float(out);
    for (int64_t o = 0; o < out; ++o) {
      const float s = std::max(0.0f, scale * (float(o) + 0.5f) - 0.5f);
      const int64_t i0 = std::min<int64_t>(int64_t(s), in - 1);
      const int64_t i1 = std::min<int64_t>(i0 + 1, in - 1);
      const float l1 = s - float(i0);
      t[size_t(o)] = {i0, i1, 1.0f - l1, l1};
    }
    return t;
  };
  const std::vector<Tap> ty = taps(H, h), tx = taps(W, w);
  Tensor out = empty({C, h, w}, src.dtype());
  auto run = [&](auto tag) {
    using T = decltype(tag);
    using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T* s = src.data<T>();
    T* d = out.data<T>();
    for (int64_t c = 0; c < C; ++c) {
      const T* p = s + c * H * W;
      for (int64_t y = 0; y < h; ++y) {
        const Tap& a = ty[size_t(y)];
        const T* r0 = p + a.i0 * W;
        const T* r1 = p + a.i1 * W;
        for (int64_t x = 0; x < w; ++x) {
          const Tap& b = tx[size_t(x)];
          // Same association as PyTorch's kernel: h0λ·(w0λ·x00 + w1λ·x01) + h1λ·(...).
          const A v = A(a.l0) * (A(b.l0) * A(r0[b.i0]) + A(b.l1) * A(r0[b.i1])) +
                      A(a.l1) * (A(b.l0) * A(r1[b.i0]) + A(b.l1) * A(r1[b.i1]));
          // U8 rounds to nearest and saturates (data/transforms.cc's store<uint8_t>).
          if constexpr (std::is_same_v<T, uint8_t>)
            d[(c * h + y) * w + x] = uint8_t(std::clamp(std::nearbyint(double(v)), 0.0, 255.0));
          else
            d[(c * h + y) * w + x] = T(v);
        }
      }
    }
  };
  if (t == DType::u8) run(uint8_t{});
  else if (t == DType::f32) run(float{});
  else run(double{});
  return out;
}

}  // namespace finch::image
