// Dense vs sparse kernels (kernels/sparse_conv.h) side by side, and the crossover table the
// runtime chooses sparse kernels by (runtime/sparse_choice.h).
//
// Sweep (default): for ResNet-20, MobileNetV2 (CIFAR) and BERT-FFN-like layer shapes at batch 1,
// weights pruned to 0…98 % (random unstructured zeros), times the runtime's dense kernel (fp32:
// F32Conv2d / F32Linear; int8: QConv2d / QLinear) and the sparse one alternately in every round
// and keeps each one's best round (the machine is shared: the minimum is the least disturbed).
// A shape's crossover is the least swept sparsity from which the sparse kernel is faster at every
// higher one; a kind's (precision × SparseShape) is the largest over its shapes, so that sparse is
// chosen only where it paid on every measured shape of that kind ("never" when one never paid).
//   build/bin/bench_sparse [--threads 1] [--rounds 41] [--csv points.csv] [--table runtime/sparse_thresholds.cc]
// Programs: each .finch program timed with ProgramOptions::sparse measured (or --mode always) and
// dense, alternating rounds, after checking that both give the same outputs:
//   build/bin/bench_sparse --programs r20-sparse-int8.finch r20-sparse-fp32.finch [--iters 200 --rounds 7]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/f32_conv.h"
#include "kernels/qs8_conv.h"
#include "kernels/sparse_conv.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

namespace {

using namespace finch;
namespace qk = finch::quant::kernels;
using runtime::SparseShape;
using Clock = std::chrono::steady_clock;

struct Layer {
  const char* model;
  const char* name;
  int64_t C, OC, K, H, W;  // conv: C→OC K×K (padding K/2) on H×W; linear: C→OC over H rows (K = 0)
  SparseShape shape() const {
    if (K == 0) return H >= qk::kSpmmRows ? SparseShape::linear : SparseShape::linear_row;
    return K == 1 ? SparseShape::conv1x1 : SparseShape::conv;
  }
};

const std::vector<Layer>& layers() {
  static const std::vector<Layer> l = {
      {"resnet20", "conv3x3 16->16 32x32", 16, 16, 3, 32, 32},
      {"resnet20", "conv3x3 32->32 16x16", 32, 32, 3, 16, 16},
      {"resnet20", "conv3x3 64->64 8x8", 64, 64, 3, 8, 8},
      {"resnet20", "conv3x3 64->64 7x7", 64, 64, 3, 7, 7},  // the Fashion-MNIST (28×28) program's last stage
      {"resnet20", "fc 64->10 1 row", 64, 10, 0, 1, 0},
      {"mobilenetv2", "conv1x1 16->96 32x32", 16, 96, 1, 32, 32},
      {"mobilenetv2", "conv1x1 144->24 16x16", 144, 24, 1, 16, 16},
      {"mobilenetv2", "conv1x1 192->64 8x8", 192, 64, 1, 8, 8},
      {"mobilenetv2", "conv1x1 320->1280 4x4", 320, 1280, 1, 4, 4},
      {"bert", "ffn 768->3072 128 rows", 768, 3072, 0, 128, 0},
      {"bert", "ffn 3072->768 128 rows", 3072, 768, 0, 128, 0},
      {"bert", "ffn 768->3072 1 row", 768, 3072, 0, 1, 0},
  };
  return l;
}

const std::vector<double> kSparsities = {0.0, 0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98};

// Seconds per call of f: enough calls for about 0.3 ms, the best of `rounds` rounds; a and b
// alternate inside every round so that both see the same load. Short windows and many rounds:
// on a shared machine (load 10+ on 2 cores) a window of several ms is almost never left alone.
std::pair<double, double> time_ab(const std::function<void()>& a, const std::function<void()>& b, int rounds) {
  a(), b();  // warm
  const auto t0 = Clock::now();
  a();
  const double once = std::max(1e-7, std::chrono::duration<double>(Clock::now() - t0).count());
  const int n = int(std::clamp(0.0003 / once, 1.0, 2000.0));
  double best_a = 1e30, best_b = 1e30;
  for (int r = 0; r < rounds; ++r)
    for (int which = 0; which < 2; ++which) {
      const auto& f = which == 0 ? a : b;
      const auto s = Clock::now();
      for (int i = 0; i < n; ++i) f();
      const double t = std::chrono::duration<double>(Clock::now() - s).count() / n;
      (which == 0 ? best_a : best_b) = std::min(which == 0 ? best_a : best_b, t);
    }
  return {best_a, best_b};
}

template <class T>
Tensor pruned(Tensor w, double s, std::mt19937& rng) {
  std::bernoulli_distribution zero(s);
  T* p = w.data<T>();
  for (int64_t i = 0; i < w.numel(); ++i)
    if (zero(rng)) p[i] = T(0);
  return w;
}

Tensor uniform_f32(const Shape& s, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1, 1);
  std::vector<float> v(size_t(shape_numel(s)));
  for (float& f : v) f = u(rng);
  return from_vector(v, s);
}
Tensor codes_i8(const Shape& s, std::mt19937& rng) {
  Tensor t = empty(s, DType::i8);
  for (int64_t i = 0; i < t.numel(); ++i) t.data<int8_t>()[i] = int8_t(int(rng() % 255) - 127);
  return t;
}

struct Point {
  const Layer* layer;
  bool int8;
  double sparsity, dense_s, sparse_s;
};

Point measure(const Layer& L, bool int8, double s, int rounds, std::mt19937& rng) {
  const bool conv = L.K > 0;
  const Shape ws = conv ? Shape{L.OC, L.C, L.K, L.K} : Shape{L.OC, L.C};
  const Shape xs = conv ? Shape{1, L.C, L.H, L.W} : Shape{L.H, L.C};
  ops::Conv2dParams p;
  p.ph = p.pw = L.K / 2;
  std::function<void()> dense, sparse;
  std::pair<double, double> t;
  if (!int8) {
    const Tensor w = pruned<float>(uniform_f32(ws, rng), s, rng), b = uniform_f32({L.OC}, rng), x = uniform_f32(xs, rng);
    if (conv) {
      const qk::F32Conv2d d(w, b, p, qk::FusedAct::relu, L.H, L.W);
      const qk::F32SparseConv2d sp(w, b, p, qk::FusedAct::relu);
      t = time_ab([&] { d.run(x); }, [&] { sp.run(x); }, rounds);
    } else {
      const qk::F32Linear d(w, b, qk::FusedAct::none);
      const qk::F32SparseLinear sp(w, b, qk::FusedAct::none);
      t = time_ab([&] { d.run(x); }, [&] { sp.run(x); }, rounds);
    }
  } else {
    const Tensor w = pruned<int8_t>(codes_i8(ws, rng), s, rng), x = codes_i8(xs, rng);
    Tensor b = empty({L.OC}, DType::i32);
    for (int64_t i = 0; i < L.OC; ++i) b.data<int32_t>()[i] = int32_t(rng() % 2001) - 1000;
    // Outputs spread over the code range: s_x·s_w / s_y about 1 / (8·sqrt(K)).
    const double k = double(L.C * std::max<int64_t>(1, L.K * L.K));
    const std::vector<quant::FixedPointMultiplier> m(size_t(L.OC), quant::quantize_multiplier(1.0 / (8.0 * std::sqrt(k))));
    if (conv) {
      const qk::QConv2d d(w, b, m, p, DType::i8, 3, -5, -5, 127, DType::i8);
      const qk::QSparseConv2d sp(w, b, m, p, DType::i8, 3, -5, -5, 127, DType::i8);
      t = time_ab([&] { d.run(x); }, [&] { sp.run(x); }, rounds);
    } else {
      const qk::QLinear d(w, b, m, DType::i8, 3, -5, -128, 127, DType::i8);
      const qk::QSparseLinear sp(w, b, m, DType::i8, 3, -5, -128, 127, DType::i8);
      t = time_ab([&] { d.run(x); }, [&] { sp.run(x); }, rounds);
    }
  }
  return {&L, int8, s, t.first, t.second};
}

// The least swept sparsity from which sparse beat dense at every higher one (2: never).
double crossover(const std::vector<Point>& pts) {
  double c = 2.0;
  for (auto it = pts.rbegin(); it != pts.rend() && it->sparse_s < it->dense_s; ++it) c = it->sparsity;
  return c;
}

std::string fmt(double c) {
  char b[32];
  std::snprintf(b, sizeof b, c > 1 ? "never" : "%.2f", c);
  return b;
}

int sweep(int threads, int rounds, const std::string& csv, const std::string& table) {
  set_num_threads(threads);
  std::mt19937 rng(18);
  std::vector<Point> all;
  std::map<std::pair<bool, SparseShape>, double> kind;  // precision × shape -> crossover
  std::map<std::pair<bool, SparseShape>, std::string> evidence;
  std::printf("%-12s %-26s %-5s %-10s", "model", "layer", "prec", "shape");
  for (double s : kSparsities) std::printf(" %6.0f%%", 100 * s);
  std::printf("  crossover  (sparse time / dense time; dense us at 0%%)\n");
  for (bool int8 : {false, true})
    for (const Layer& L : layers()) {
      std::vector<Point> pts;
      for (double s : kSparsities) pts.push_back(measure(L, int8, s, rounds, rng));
      const double c = crossover(pts);
      std::printf("%-12s %-26s %-5s %-10s", L.model, L.name, int8 ? "int8" : "fp32", runtime::sparse_shape_name(L.shape()));
      for (const Point& p : pts) std::printf(" %7.2f", p.sparse_s / p.dense_s);
      std::printf("  %-9s  %.1f us\n", fmt(c).c_str(), 1e6 * pts[0].dense_s);
      std::fflush(stdout);
      const auto key = std::make_pair(int8, L.shape());
      kind[key] = std::max(kind.count(key) ? kind[key] : 0.0, c);
      evidence[key] += std::string(evidence[key].empty() ? "" : "; ") + L.name + " " + fmt(c);
      all.insert(all.end(), pts.begin(), pts.end());
    }
  std::printf("\ncrossover by kind (the largest over its shapes):\n");
  for (const auto& [k, c] : kind)
    std::printf("  %-4s %-10s %-6s (%s)\n", k.first ? "int8" : "fp32", runtime::sparse_shape_name(k.second), fmt(c).c_str(),
                evidence[k].c_str());
  if (!csv.empty()) {
    std::ofstream f(csv);
    f << "model,layer,precision,shape,sparsity,dense_us,sparse_us,ratio\n";
    for (const Point& p : all)
      f << p.layer->model << ',' << p.layer->name << ',' << (p.int8 ? "int8" : "fp32") << ','
        << runtime::sparse_shape_name(p.layer->shape()) << ',' << p.sparsity << ',' << 1e6 * p.dense_s << ','
        << 1e6 * p.sparse_s << ',' << p.sparse_s / p.dense_s << '\n';
    if (!f) fail(csv, ": could not be written");
  }
  if (!table.empty()) {
    std::ofstream f(table);
    f << "// The crossover table of runtime/sparse_choice.h, written by bench/bench_sparse.cc (do not edit by\n"
         "// hand; rerun it): the least sparsity from which the sparse kernel beat the dense one on every\n"
         "// measured shape of that kind, batch 1, " << threads << " thread" << (threads == 1 ? "" : "s")
      << ", best of " << rounds << " alternating rounds.\n#include \"runtime/sparse_choice.h\"\n\n"
         "namespace finch::runtime {\n\ndouble sparse_crossover(bool int8, SparseShape s) {\n";
    for (bool int8 : {false, true}) {
      f << "  if (" << (int8 ? "" : "!") << "int8) {\n";
      for (SparseShape s : {SparseShape::conv1x1, SparseShape::conv, SparseShape::linear, SparseShape::linear_row}) {
        const auto it = kind.find({int8, s});
        const double c = it == kind.end() ? 2.0 : it->second;
        f << "    // " << (it == kind.end() ? "not measured" : evidence[{int8, s}]) << "\n";
        f << "    if (s == SparseShape::" << runtime::sparse_shape_name(s) << ") return " << (c > 1 ? "2.0" : fmt(c))
          << ";" << (c > 1 ? "  // never" : "") << "\n";
      }
      f << "  }\n";
    }
    f << "  return 2.0;\n}\n\n}  // namespace finch::runtime\n";
    if (!f) fail(table, ": could not be written");
    std::printf("table: %s\n", table.c_str());
  }
  return 0;
}

Tensor random_input(const runtime::Value& v, std::mt19937& rng) {
  Shape s = v.shape;
  if (!s.empty()) s[0] = 1;
  if (v.dtype == DType::f32) {
    std::normal_distribution<float> n;
    std::vector<float> x(size_t(shape_numel(s)));
    for (float& f : x) f = n(rng);
    return from_vector(x, s);
  }
  fail("bench_sparse --programs: expected programs with an F32 input, found ", dtype_name(v.dtype));
}

int programs(const std::vector<std::string>& files, runtime::SparseKernels mode, int threads, int iters, int rounds) {
  set_num_threads(threads);
  std::mt19937 rng(18);
  for (const std::string& file : files) {
    runtime::ProgramOptions sparse, dense;
    sparse.sparse = mode;
    dense.sparse = runtime::SparseKernels::dense;
    runtime::Program a(runtime::read_program(file), file, sparse), b(runtime::read_program(file), file, dense);
    int64_t on = 0;
    for (double s : a.sparse_nodes()) on += s >= 0;
    const Tensor x = random_input(a.graph().values[size_t(a.graph().inputs[0])], rng);
    const Tensor ya = a.run(x), yb = b.run(x);
    double diff = 0;
    const Tensor fa = ya.to(DType::f32), fb = yb.to(DType::f32);
    for (int64_t i = 0; i < fa.numel(); ++i)
      diff = std::max(diff, double(std::fabs(fa.data<float>()[i] - fb.data<float>()[i])));
    std::vector<double> ta, tb;
    for (int r = 0; r < rounds; ++r)
      for (int which = 0; which < 2; ++which) {
        runtime::Program& p = which == 0 ? a : b;
        std::vector<double> ms;
        for (int i = 0; i < iters; ++i) {
          const auto s = Clock::now();
          p.run(x);
          ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
        }
        std::sort(ms.begin(), ms.end());
        (which == 0 ? ta : tb).push_back(ms[ms.size() / 2]);
      }
    std::sort(ta.begin(), ta.end());
    std::sort(tb.begin(), tb.end());
    std::printf("%s (--mode %s): %lld sparse nodes; max |sparse − dense| %.3g; median of round medians: sparse %.3f ms, dense "
                "%.3f ms, ratio %.3f (best rounds %.3f / %.3f = %.3f), %d thread%s\n",
                file.c_str(), runtime::sparse_kernels_name(mode), static_cast<long long>(on), diff, ta[ta.size() / 2], tb[tb.size() / 2],
                ta[ta.size() / 2] / tb[tb.size() / 2], ta[0], tb[0], ta[0] / tb[0], threads, threads == 1 ? "" : "s");
    // Per node (a profiled run of each after the timed rounds): where the difference comes from.
    a.set_profiling(true), b.set_profiling(true);
    for (int i = 0; i < iters; ++i) a.run(x), b.run(x);
    std::printf("  %-28s %9s %9s %9s %7s\n", "node", "sparsity", "sparse us", "dense us", "ratio");
    for (size_t i = 0; i < a.graph().nodes.size(); ++i) {
      const double sa = 1e6 * a.node_seconds()[i] / iters, sb = 1e6 * b.node_seconds()[i] / iters;
      if (a.sparse_nodes()[i] < 0 && sa + sb < 2.0) continue;  // small dense nodes
      std::printf("  %-28.28s %8.1f%% %9.1f %9.1f %7.2f\n", a.graph().nodes[i].name.c_str(),
                  a.sparse_nodes()[i] >= 0 ? 100 * a.sparse_nodes()[i] : 0.0, sa, sb, sb > 0 ? sa / sb : 0.0);
    }
    std::fflush(stdout);
  }
  return 0;
}

int positive(const char* opt, const char* v) {
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*v == '\0' || *end != '\0' || n < 1 || n > 100000) fail(opt, " expects a whole number 1..100000, got '", v, "'");
  return int(n);
}

}  // namespace

int main(int argc, char** argv) try {
  int threads = 1, rounds = 41, iters = 200;
  std::string csv, table;
  runtime::SparseKernels mode = runtime::SparseKernels::measured;
  std::vector<std::string> files;
  bool progs = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> const char* {
      if (i + 1 >= argc) fail(a, " expects a value");
      return argv[++i];
    };
    if (a == "--threads") threads = positive("--threads", value());
    else if (a == "--rounds") rounds = positive("--rounds", value());
    else if (a == "--iters") iters = positive("--iters", value());
    else if (a == "--csv") csv = value();
    else if (a == "--table") table = value();
    else if (a == "--programs") progs = true;
    else if (a == "--mode") mode = runtime::sparse_kernels_from_name(value(), "--mode");
    else if (progs && a.rfind("--", 0) != 0) files.push_back(a);
    else fail("bench_sparse: unknown argument '", a, "' (see the comment at the top of bench/bench_sparse.cc)");
  }
  if (progs) {
    if (files.empty()) fail("bench_sparse --programs expects at least one .finch program");
    return programs(files, mode, threads, iters, rounds);
  }
  return sweep(threads, rounds, csv, table);
} catch (const std::exception& e) {
  std::fprintf(stderr, "%s\n", e.what());
  return 1;
}
