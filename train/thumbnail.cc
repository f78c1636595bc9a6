// PNG data URIs and the most-confidently-wrong thumbnails of report.html.
#include "train/thumbnail.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "framework/error.h"
#include "framework/random.h"

namespace finch::train {
namespace {

// CRC-32 (ISO 3309, polynomial 0xEDB88320) as the PNG spec's sample code computes it.
uint32_t crc32(const std::string& data) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t n = 0; n < 256; ++n) {
      uint32_t c = n;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[n] = c;
    }
    return t;
  }();
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

void put_u32(std::string& s, uint32_t v) {
  for (int sh = 24; sh >= 0; sh -= 8) s += char((v >> sh) & 0xFF);
}

void chunk(std::string& png, const char* type, const std::string& data) {
  put_u32(png, uint32_t(data.size()));
  const std::string body = std::string(type, 4) + data;
  png += body;
  put_u32(png, crc32(body));
}

}  // namespace

std::string encode_png(const std::vector<uint8_t>& pixels, int64_t width, int64_t height, int channels) {
  if ((channels != 1 && channels != 3) || width <= 0 || height <= 0 ||
      int64_t(pixels.size()) != width * height * channels)
    fail("encode_png: expected ", width, "x", height, "x", channels, " pixels with 1 or 3 channels, found ",
         pixels.size(), " bytes");
  // Scanlines, each led by filter type 0 (none).
  std::string raw;
  const int64_t row = width * channels;
  for (int64_t y = 0; y < height; ++y) {
    raw += char(0);
    raw.append(reinterpret_cast<const char*>(pixels.data()) + y * row, size_t(row));
  }
  // zlib (RFC 1950): header, stored deflate blocks of ≤ 65535 bytes (RFC 1951 §3.2.4), Adler-32.
  std::string z = {char(0x78), char(0x01)};
  for (size_t pos = 0; pos < raw.size() || pos == 0;) {
    const size_t len = std::min<size_t>(65535, raw.size() - pos);
    const bool final = pos + len == raw.size();
    z += char(final ? 1 : 0);
    z += char(len & 0xFF), z += char(len >> 8);
    z += char(~len & 0xFF), z += char((~len >> 8) & 0xFF);
    z.append(raw, pos, len);
    pos += len;
    if (final) break;
  }
  uint32_t a = 1, b = 0;
  for (unsigned char c : raw) a = (a + c) % 65521, b = (b + a) % 65521;
  put_u32(z, (b << 16) | a);
  std::string png = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  put_u32(ihdr, uint32_t(width));
  put_u32(ihdr, uint32_t(height));
  ihdr += char(8);                          // bit depth
  ihdr += char(channels == 3 ? 2 : 0);      // colour type: truecolour or greyscale
  ihdr += std::string(3, char(0));          // deflate, adaptive filtering, no interlace
  chunk(png, "IHDR", ihdr);
  chunk(png, "IDAT", z);
  chunk(png, "IEND", "");
  return png;
}

std::string base64(const std::string& bytes) {
  static const char* abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += abc[v >> 18], out += abc[(v >> 12) & 63], out += abc[(v >> 6) & 63], out += abc[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
    out += abc[v >> 18], out += abc[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? abc[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string image_data_uri(const Tensor& image) {
  if (image.dim() != 3 || (image.size(0) != 1 && image.size(0) != 3))
    fail("image_data_uri: expected an image [C, H, W] with 1 or 3 channels, found ", shape_str(image.shape()));
  const int64_t C = image.size(0), H = image.size(1), W = image.size(2);
  const auto v = image.to(DType::f32).contiguous().to_vector<float>();
  float lo = INFINITY, hi = -INFINITY;
  for (float x : v)
    if (std::isfinite(x)) lo = std::min(lo, x), hi = std::max(hi, x);
  const float span = hi > lo ? hi - lo : 1.0f;
  std::vector<uint8_t> px(size_t(C * H * W));
  for (int64_t c = 0; c < C; ++c)  // planar CHW → interleaved HWC
    for (int64_t i = 0; i < H * W; ++i) {
      const float x = v[size_t(c * H * W + i)];
      px[size_t(i * C + c)] = uint8_t(std::isfinite(x) ? std::lround(255.0f * (x - lo) / span) : 0);
    }
  return "data:image/png;base64," + base64(encode_png(px, W, H, int(C)));
}

std::vector<Thumbnail> confident_mistake_thumbnails(const data::Dataset& dataset, const EvalResult& r, size_t n) {
  std::vector<Thumbnail> out;
  Generator g(0);
  for (int64_t i : most_confident_mistakes(r, n)) {
    if (i >= dataset.size()) break;
    Thumbnail t;
    t.index = i;
    t.label = r.labels[size_t(i)];
    t.predicted = r.predicted[size_t(i)];
    t.confidence = r.confidence[size_t(i)];
    t.data_uri = image_data_uri(dataset.get(i, g).image);
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace finch::train
