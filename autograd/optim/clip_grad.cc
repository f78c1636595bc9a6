// clip_grad_norm_ / clip_grad_value_: torch.nn.utils' formulas, with parallel reductions whose
// partial sums are combined in a fixed order (same result for a given thread count).
#include "autograd/optim/clip_grad.h"

#include <algorithm>
#include <cmath>
#include <mutex>

#include "autograd/optim/optimizer.h"
#include "framework/grad_mode.h"

namespace finch::optim {

namespace {

// Sum of f(g[i]) over [b, e) with 16 independent accumulators of T: the compiler turns the
// lanes into SIMD registers (a single running sum is a serial dependency chain that it may not
// reorder). Blocks of 1024 are summed in T and the block sums added in double, which keeps the
// f32 rounding error at the level of torch's own vectorized f32 reduction.
template <typename T, typename F>
double lane_sum(const T* g, int64_t b, int64_t e, F&& f, bool max_instead = false) {
  constexpr int kLanes = 16;
  constexpr int64_t kBlock = 1024;
  double total = 0;
  for (int64_t blk = b; blk < e; blk += kBlock) {
    const int64_t end = std::min(e, blk + kBlock);
    T lanes[kLanes] = {};
    int64_t i = blk;
    for (; i + kLanes <= end; i += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const T x = f(g[i + l]);
        lanes[l] = max_instead ? (x > lanes[l] ? x : lanes[l]) : lanes[l] + x;
      }
    for (; i < end; ++i) lanes[0] = max_instead ? std::max(lanes[0], f(g[i])) : lanes[0] + f(g[i]);
    double block = 0;
    for (int l = 0; l < kLanes; ++l) block = max_instead ? std::max(block, double(lanes[l])) : block + double(lanes[l]);
    total = max_instead ? std::max(total, block) : total + block;
  }
  return total;
}

// The norm_type-norm of one gradient (p = inf: max |g|). Partial results of the parallel
// chunks are combined in chunk order, so the result depends only on the thread count.
template <typename T>
double grad_norm(const T* g, int64_t n, double p) {
  std::mutex mu;
  std::vector<std::pair<int64_t, double>> parts;
  const bool inf = std::isinf(p);
  for_chunks(n, [&](int64_t b, int64_t e) {
    double acc;
    if (inf) acc = lane_sum(g, b, e, [](T x) { return x < 0 ? -x : x; }, /*max_instead=*/true);
    else if (p == 2.0) acc = lane_sum(g, b, e, [](T x) { return x * x; });
    else if (p == 1.0) acc = lane_sum(g, b, e, [](T x) { return x < 0 ? -x : x; });
    else {
      acc = 0;
      for (int64_t i = b; i < e; ++i) acc += std::pow(std::abs(double(g[i])), p);
    }
    std::lock_guard<std::mutex> lock(mu);
    parts.emplace_back(b, acc);
  });
  std::sort(parts.begin(), parts.end());
  double total = 0;
  for (const auto& [b, v] : parts) total = inf ? std::max(total, v) : total + v;
  if (inf) return total;
  return p == 2.0 ? std::sqrt(total) : p == 1.0 ? total : std::pow(total, 1.0 / p);
}

template <typename F>
void for_each_grad(const std::vector<Tensor>& params, const char* op, F&& fn) {
  for (size_t i = 0; i < params.size(); ++i) {
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    if (g.dtype() != DType::f32 && g.dtype() != DType::f64)
      fail(op, ": gradient of parameter ", i, " must be f32 or f64, got ", dtype_name(g.dtype()));
    if (!g.is_contiguous()) {  // make it contiguous once, so the in-place scaling reaches .grad
      g = g.contiguous();
      params[i].set_grad(g);
    }
    fn(g);
  }
}

}  // namespace

double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type,
                       bool error_if_nonfinite) {
  if (!(norm_type > 0)) fail("clip_grad_norm_: norm_type must be positive, got ", norm_type);
  NoGradGuard ng;
  std::vector<double> norms;
  bool any_f32 = false;
  for_each_grad(params, "clip_grad_norm_", [&](const Tensor& g) {
    double n;
    if (g.dtype() == DType::f32) {
      any_f32 = true;
      n = double(float(grad_norm(g.data<float>(), g.numel(), norm_type)));  // torch: f32 result
    } else {
      n = grad_norm(g.data<double>(), g.numel(), norm_type);
    }
    norms.push_back(n);
  });
  if (norms.empty()) return 0.0;
  // The norm of the per-gradient norms (torch.norm(torch.stack(norms), p)).
  double total = 0;
  if (std::isinf(norm_type)) {
    for (double n : norms) total = std::max(total, n);
  } else {
    for (double n : norms) total += std::pow(n, norm_type);
    total = std::pow(total, 1.0 / norm_type);
  }
  if (any_f32) total = double(float(total));
  if (error_if_nonfinite && !std::isfinite(total))
    fail("clip_grad_norm_: the total norm of order ", norm_type, " of the gradients is ", total,
         ", so they cannot be clipped; pass error_if_nonfinite=false to scale them anyway");
  // torch computes the coefficient in the norm's dtype and clamps it at 1.
  const double coef = std::min(1.0, any_f32 ? double(float(max_norm) / (float(total) + 1e-6f))
                                            : max_norm / (total + 1e-6));
  if (coef >= 1.0) return total;  // multiplying by 1 changes nothing
  for_each_grad(params, "clip_grad_norm_", [&](Tensor& g) {
    visit_dtype(g.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        T* p = g.data<T>();
        const T c = T(coef);
        for_chunks(g.numel(), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) p[i] *= c;
        });
      }
    });
  });
  return total;
}

void clip_grad_value_(const std::vector<Tensor>& params, double clip_value) {
  if (!(clip_value >= 0)) fail("clip_grad_value_: clip_value must be non-negative, got ", clip_value);
  NoGradGuard ng;
  for_each_grad(params, "clip_grad_value_", [&](Tensor& g) {
    visit_dtype(g.dtype(), [&](auto tag) {
      using T = decltype(tag);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        T* p = g.data<T>();
        const T hi = T(clip_value), lo = T(-clip_value);
        for_chunks(g.numel(), [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) p[i] = std::min(std::max(p[i], lo), hi);
        });
      }
    });
  });
}

}  // namespace finch::optim
