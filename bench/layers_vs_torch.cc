// finch side of bench/compare_layers.py: forward+backward time of one layer through the
// differentiable API (the path a user's model takes), printed as JSON.
// usage: layers_vs_torch CASE THREADS ITERS  ->  {"case": ..., "median_ms": ...}
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "framework/parallel.h"
#include "framework/random.h"

using namespace finch;

namespace {

struct Case {
  std::vector<Tensor> inputs;
  std::function<std::vector<Tensor>(const std::vector<Tensor>&)> fn;
};

Tensor r(const Shape& s, Generator& g, double scale = 1.0) {
  Tensor t = randn(s, g);
  if (scale != 1.0) {
    float* p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i) p[i] *= float(scale);
  }
  return t;
}

Case make_case(const std::string& name) {
  Generator g(0);
  using V = std::vector<Tensor>;
  if (name == "conv3x3")
    return {{r({64, 64, 32, 32}, g), r({64, 64, 3, 3}, g, 0.05), r({64}, g)}, [](const V& a) {
              Conv2dParams o;
              o.ph = o.pw = 1;
              return V{conv2d(a[0], a[1], a[2], o)};
            }};
  if (name == "dwconv3x3")
    return {{r({64, 144, 32, 32}, g), r({144, 1, 3, 3}, g, 0.3), r({144}, g)}, [](const V& a) {
              Conv2dParams o;
              o.ph = o.pw = 1;
              o.groups = 144;
              return V{conv2d(a[0], a[1], a[2], o)};
            }};
  if (name == "linear")
    return {{r({256, 1024}, g), r({1024, 1024}, g, 0.03), r({1024}, g)},
            [](const V& a) { return V{linear(a[0], a[1], a[2])}; }};
  if (name == "batchnorm") {
    auto rm = zeros({64}), rv = ones({64});
    return {{r({64, 64, 32, 32}, g), r({64}, g), r({64}, g)}, [rm, rv](const V& a) {
              return V{batch_norm(a[0], rm, rv, a[1], a[2], /*training=*/true)};
            }};
  }
  if (name == "layernorm")
    return {{r({2048, 768}, g), r({768}, g), r({768}, g)},
            [](const V& a) { return V{layer_norm(a[0], {768}, a[1], a[2])}; }};
  if (name == "softmax")
    return {{r({8 * 12 * 128, 128}, g)}, [](const V& a) { return V{softmax(a[0], -1)}; }};
  if (name == "lstm_cell")
    return {{r({64, 256}, g), r({64, 256}, g), r({64, 256}, g), r({1024, 256}, g, 0.06),
             r({1024, 256}, g, 0.06), r({1024}, g), r({1024}, g)},
            [](const V& a) {
              auto [h, c] = lstm_cell(a[0], a[1], a[2], a[3], a[4], a[5], a[6]);
              return V{h, c};
            }};
  if (name == "attention") {
    // Key padding mask: odd batch entries keep only the first 100 of 128 keys.
    Tensor keep = ones({8, 1, 1, 128}, DType::b8);
    for (int64_t b = 1; b < 8; b += 2)
      for (int64_t j = 100; j < 128; ++j) keep.set({b, 0, 0, j}, 0);
    return {{r({8, 12, 128, 64}, g), r({8, 12, 128, 64}, g), r({8, 12, 128, 64}, g)},
            [keep](const V& a) { return V{scaled_dot_product_attention(a[0], a[1], a[2], keep)}; }};
  }
  fail("layers_vs_torch: unknown case '", name,
       "' (expected conv3x3, dwconv3x3, linear, batchnorm, layernorm, softmax, lstm_cell, attention)");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s CASE THREADS ITERS\n", argv[0]);
    return 2;
  }
  try {
    const std::string name = argv[1];
    set_num_threads(std::stoi(argv[2]));
    const int iters = std::stoi(argv[3]);
    Case c = make_case(name);
    for (Tensor& t : c.inputs) t.set_requires_grad(true);
    Generator g(1);
    std::vector<Tensor> grads;
    for (const Tensor& o : c.fn(c.inputs)) grads.push_back(randn(o.shape(), g));
    auto step = [&] {
      for (Tensor& t : c.inputs) t.set_grad(Tensor());
      backward(c.fn(c.inputs), grads);
    };
    for (int i = 0; i < 3; ++i) step();
    std::vector<double> ms;
    for (int i = 0; i < iters; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      step();
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::nth_element(ms.begin(), ms.begin() + long(ms.size() / 2), ms.end());
    std::printf("{\"case\": \"%s\", \"threads\": %s, \"median_ms\": %.4f}\n", name.c_str(), argv[2],
                ms[ms.size() / 2]);
  } catch (const Error& e) {
    std::fprintf(stderr, "layers_vs_torch: %s\n", e.what());
    return 1;
  }
  return 0;
}
