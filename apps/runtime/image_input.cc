// Image files → network inputs for finch_run and sorter (see image_input.h).
#include "apps/runtime/image_input.h"

#include <algorithm>
#include <cmath>
#include <fstream>

#include "framework/error.h"
#include "framework/image.h"

namespace finch::apps {

namespace {

std::vector<float> meta_floats(const runtime::Graph& g, const char* key, size_t n, float dflt) {
  std::vector<float> v(n, dflt);
  if (!g.meta.contains(key)) return v;
  // The verifier (runtime/verify.h) has checked the list: finite numbers, std > 0, one or one per
  // channel; an empty list means no normalization.
  const auto m = g.meta[key].get<std::vector<float>>();
  if (m.empty()) return v;
  for (size_t c = 0; c < n; ++c) v[c] = m.size() == 1 ? m[0] : m.at(c);
  return v;
}

// One binary PNM image → the normalized network input [1, C, H, W].
Tensor read_pnm(const std::string& path, const ImageInput& in) {
  const Shape& s = in.shape;
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open the image");
  std::string magic;
  int64_t w = 0, h = 0, maxval = 0;
  f >> magic;
  auto skip_comments = [&] {
    f >> std::ws;
    while (f.peek() == '#') {
      f.ignore(1 << 20, '\n');
      f >> std::ws;
    }
  };
  skip_comments();
  f >> w;
  skip_comments();
  f >> h;
  skip_comments();
  f >> maxval;
  if (magic != "P5" && magic != "P6") fail(path, ": expected a binary PGM (P5) or PPM (P6) image, found magic '", magic, "'");
  if (!f || w <= 0 || h <= 0 || maxval != 255)
    fail(path, ": expected a width, a height and maxval 255 in the header, found ", w, "x", h, " maxval ", maxval);
  f.get();  // the single whitespace byte before the pixels
  const int64_t C = magic == "P5" ? 1 : 3;
  if (C != s[1] || h != s[2] || w != s[3])
    fail(path, ": the program expects ", s[1], "x", s[2], "x", s[3], " (channels x height x width) images, found ",
         C, "x", h, "x", w);
  std::vector<unsigned char> px(size_t(C * h * w));
  f.read(reinterpret_cast<char*>(px.data()), std::streamsize(px.size()));
  if (f.gcount() != std::streamsize(px.size()))
    fail(path, ": truncated, expected ", px.size(), " pixel bytes, found ", f.gcount());
  Tensor x = empty({1, C, h, w}, DType::f32);
  float* p = x.data<float>();
  for (int64_t c = 0; c < C; ++c)  // PNM is interleaved HWC; the program takes CHW
    for (int64_t i = 0; i < h * w; ++i) p[c * h * w + i] = (float(px[size_t(i * C + c)]) / 255.0f - in.mean[c]) / in.std[c];
  return x;
}

bool is_pnm(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char m[2] = {0, 0};
  f.read(m, 2);
  return f.gcount() == 2 && m[0] == 'P' && (m[1] == '5' || m[1] == '6');
}

}  // namespace

ImageInput image_input_of(const runtime::Graph& g, const std::string& program) {
  if (g.inputs.size() != 1 || g.outputs.size() != 1)
    fail(program, ": expected a classifier with one input and one output, found ", g.inputs.size(), " and ",
         g.outputs.size());
  const runtime::Value& v = g.values[size_t(g.inputs[0])];
  if (v.shape.size() != 4 || v.dtype != DType::f32 || v.shape[1] < 1 || v.shape[2] < 1 || v.shape[3] < 1)
    fail(program, ": expected an f32 image input [N, C, H, W], found ", dtype_name(v.dtype), " ", shape_str(v.shape));
  ImageInput in;
  in.shape = v.shape;
  in.mean = meta_floats(g, "mean", size_t(v.shape[1]), 0.0f);
  in.std = meta_floats(g, "std", size_t(v.shape[1]), 1.0f);
  if (g.meta.contains("classes")) in.classes = g.meta["classes"].get<std::vector<std::string>>();
  in.softmax_output = !g.nodes.empty() && g.nodes.back().op == "softmax";
  return in;
}

Tensor load_image(const std::string& path, const ImageInput& in) {
  if (is_pnm(path)) return read_pnm(path, in);
  const int64_t C = in.shape[1], H = in.shape[2], W = in.shape[3];
  if (C != 1 && C != 3)
    fail(path, ": the program takes ", C, "-channel inputs; only 1- or 3-channel programs classify image files");
  const Tensor u8 = image::decode_image(path, int(C), H, W);
  Tensor x = empty({1, C, H, W}, DType::f32);
  const uint8_t* s = u8.data<uint8_t>();
  float* d = x.data<float>();
  for (int64_t c = 0; c < C; ++c) {
    // data::to_float then data::normalize, operation for operation (see the header).
    const float m = in.mean[size_t(c)], inv = 1.0f / in.std[size_t(c)];
    for (int64_t i = 0; i < H * W; ++i) d[c * H * W + i] = (float(s[c * H * W + i]) / 255.0f - m) * inv;
  }
  return x;
}

Decision decide(const float* row, int64_t n, const ImageInput& in) {
  if (n < 1) fail("the program's output row is empty; expected one score per class");
  Decision d;
  d.index = std::max_element(row, row + n) - row;
  d.name = size_t(d.index) < in.classes.size() ? in.classes[size_t(d.index)] : std::to_string(d.index);
  d.score = row[d.index];
  if (in.softmax_output) {
    d.confidence = d.score;
  } else {
    // Softmax of the top class: 1 / Σ exp(v − v_top), which never overflows.
    double sum = 0;
    for (int64_t k = 0; k < n; ++k) sum += std::exp(double(row[k]) - double(d.score));
    d.confidence = float(1.0 / sum);
  }
  if (!std::isfinite(d.confidence)) d.confidence = 0;  // NaN logits are never a confident decision
  return d;
}

}  // namespace finch::apps
