// finch_run: the deployable side of finch. Loads a .finch program and classifies images with it,
// linking only the runtime (runtime → kernels → ops → framework), never autograd,
// models or the training code; its stripped size is what a device has to carry.
//
//   finch_run model.finch                          program summary (inputs, outputs, classes)
//   finch_run model.finch a.pgm b.ppm ...          one line per image: file, class, score
//   finch_run model.finch --raw batch.f32          a raw little-endian f32 tensor [N, C, H, W]
//                                                  that is already the network's input
//   --logits FILE.csv   also write every output row (written to a temporary file, then renamed)
//   --bench N           time N batch-1 runs of the first image, print the median in ms
//   --threads N         compute threads (default: all cores)
//   --max-memory BYTES  activation memory one image may need (default FINCH_MAX_ACTIVATION_BYTES
//                       or 4 GiB): a program or batch over it is refused before allocating
//
// Images are binary PGM (P5, 1 channel) or PPM (P6, 3 channels) with maxval 255, the size the
// program was built for (cameras and `convert` write them; resizing belongs to the capture
// side). They are preprocessed as in training: x = (pixel / 255 − mean[c]) / std[c] with the
// mean/std the program carries in its meta.
//
// Argument parsing is by hand on purpose: CLI11 would be most of this file's binary size.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "apps/lib/user_errors.h"
#include "framework/atomic_file.h"
#include "framework/error.h"
#include "framework/parallel.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace {

using namespace finch;

struct Args {
  std::string program, raw, logits;
  std::vector<std::string> images;
  int64_t bench = 0, threads = 0, max_memory = 0;
};

int64_t parse_count(const std::string& flag, const std::string& s) {
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (s.empty() || *end != '\0' || v < 0) fail(flag, ": expected a non-negative integer, found '", s, "'");
  return v;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) fail(s, ": expected a value after it");
      return argv[++i];
    };
    if (s == "--raw") a.raw = value();
    else if (s == "--logits") a.logits = value();
    else if (s == "--bench") a.bench = parse_count(s, value());
    else if (s == "--threads") a.threads = parse_count(s, value());
    else if (s == "--max-memory") {
      a.max_memory = parse_count(s, value());
      if (a.max_memory < 1) fail(s, ": expected a positive number of bytes, found 0");
    }
    else if (s.rfind("--", 0) == 0)
      fail("unknown option ", s, " (expected --raw, --logits, --bench, --threads or --max-memory)");
    else if (a.program.empty()) a.program = s;
    else a.images.push_back(s);
  }
  if (a.program.empty()) fail("usage: finch_run MODEL.finch [IMAGE.pgm|IMAGE.ppm ...] [--raw FILE.f32] "
                              "[--logits FILE.csv] [--bench N] [--threads N] [--max-memory BYTES]");
  return a;
}

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
Tensor read_pnm(const std::string& path, const Shape& in, const std::vector<float>& mean, const std::vector<float>& std) {
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
  if (C != in[1] || h != in[2] || w != in[3])
    fail(path, ": the program expects ", in[1], "x", in[2], "x", in[3], " (channels x height x width) images, found ",
         C, "x", h, "x", w);
  std::vector<unsigned char> px(size_t(C * h * w));
  f.read(reinterpret_cast<char*>(px.data()), std::streamsize(px.size()));
  if (f.gcount() != std::streamsize(px.size()))
    fail(path, ": truncated, expected ", px.size(), " pixel bytes, found ", f.gcount());
  Tensor x = empty({1, C, h, w}, DType::f32);
  float* p = x.data<float>();
  for (int64_t c = 0; c < C; ++c)  // PNM is interleaved HWC; the program takes CHW
    for (int64_t i = 0; i < h * w; ++i) p[c * h * w + i] = (float(px[size_t(i * C + c)]) / 255.0f - mean[c]) / std[c];
  return x;
}

Tensor read_raw(const std::string& path, const Shape& in) {
  std::ifstream f(path, std::ios::binary);
  if (!f) fail(path, ": cannot open the raw tensor");
  const std::string bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const int64_t per = in[1] * in[2] * in[3] * 4;
  if (bytes.empty() || int64_t(bytes.size()) % per != 0)
    fail(path, ": expected a multiple of ", per, " bytes (f32 images of ", in[1], "x", in[2], "x", in[3], "), found ",
         bytes.size());
  Tensor x = empty({int64_t(bytes.size()) / per, in[1], in[2], in[3]}, DType::f32);
  std::memcpy(x.data<float>(), bytes.data(), bytes.size());
  return x;
}

void print_summary(const runtime::Program& p, const std::string& path) {
  const runtime::Graph& g = p.graph();
  std::printf("%s: %s %s program, %zu nodes, activation arena %.1f KiB\n", path.c_str(),
              g.meta.value("model", "?").c_str(), g.meta.value("precision", "?").c_str(), g.nodes.size(),
              p.memory().arena_bytes / 1024.0);
  for (int64_t i : g.inputs) std::printf("  input  %s %s\n", g.values[size_t(i)].name.c_str(), shape_str(g.values[size_t(i)].shape).c_str());
  for (int64_t i : g.outputs) std::printf("  output %s %s\n", g.values[size_t(i)].name.c_str(), shape_str(g.values[size_t(i)].shape).c_str());
}

int run(int argc, char** argv) {
  const Args a = parse_args(argc, argv);
  if (a.threads > 0) set_num_threads(int(a.threads));
  runtime::ProgramOptions po;
  po.max_activation_bytes = a.max_memory;  // 0: FINCH_MAX_ACTIVATION_BYTES or the default
  runtime::Program p(runtime::read_program(a.program), a.program, po);
  const runtime::Graph& g = p.graph();
  if (g.inputs.size() != 1 || g.outputs.size() != 1)
    fail(a.program, ": finch_run classifies with one input and one output, found ", g.inputs.size(), " and ", g.outputs.size());
  const runtime::Value& in = g.values[size_t(g.inputs[0])];
  if (in.shape.size() != 4 || in.dtype != DType::f32)
    fail(a.program, ": expected an f32 image input [N, C, H, W], found ", dtype_name(in.dtype), " ", shape_str(in.shape));
  if (a.images.empty() && a.raw.empty()) {
    print_summary(p, a.program);
    return 0;
  }
  const std::vector<float> mean = meta_floats(g, "mean", size_t(in.shape[1]), 0.0f);
  const std::vector<float> stdv = meta_floats(g, "std", size_t(in.shape[1]), 1.0f);
  std::vector<std::string> names = a.images;
  std::vector<Tensor> batch;
  for (const auto& path : a.images) batch.push_back(read_pnm(path, in.shape, mean, stdv));
  if (!a.raw.empty()) {
    const Tensor r = read_raw(a.raw, in.shape);
    for (int64_t i = 0; i < r.shape()[0]; ++i) {
      batch.push_back(r.narrow(0, i, 1).contiguous());
      names.push_back(a.raw + "[" + std::to_string(i) + "]");
    }
  }
  std::vector<std::string> classes;
  if (g.meta.contains("classes")) classes = g.meta["classes"].get<std::vector<std::string>>();
  std::ostringstream csv;
  for (size_t i = 0; i < batch.size(); ++i) {
    const Tensor y = p.run(batch[i]).to(DType::f32).contiguous();
    const float* v = y.data<float>();
    const int64_t n = y.numel();
    const int64_t best = std::max_element(v, v + n) - v;
    const std::string cls = size_t(best) < classes.size() ? classes[size_t(best)] : std::to_string(best);
    std::printf("%s\t%lld\t%s\t%.6g\n", names[i].c_str(), static_cast<long long>(best), cls.c_str(), v[best]);
    csv << names[i];
    for (int64_t k = 0; k < n; ++k) csv << ',' << v[k];
    csv << '\n';
  }
  if (!a.logits.empty()) write_file_atomically(a.logits, csv.str());
  if (a.bench > 0) {
    std::vector<double> ms;
    for (int64_t r = 0; r < a.bench; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      p.run(batch[0]);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(ms.begin(), ms.begin() + ms.size() / 2, ms.end());
    std::printf("batch-1 latency: median %.3f ms over %lld runs, %d threads\n", ms[ms.size() / 2],
                static_cast<long long>(a.bench), get_num_threads());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // One line for every error: a finch::Error's sentence, out of memory, or a named internal error.
  return finch::apps::run_with_user_errors("finch_run", [&] { return run(argc, argv); });
}
