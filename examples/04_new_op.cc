// Course example 04 (docs/course/04-new-op.md): a new op from scratch, the four steps of
// docs/adding-an-op.md in one file — a scalar reference, a Highway kernel, an autograd rule, and
// the checks (kernel == reference on every compiled SIMD target; gradcheck in f64).
//
// The op is squareplus (Barron 2021, arXiv:2112.11687), a smooth ReLU with no exp or log:
//   y  = (x + √(x² + b)) / 2                 b > 0 sets the curvature at 0 (b = 4 here)
//   dy/dx = (1 + x / √(x² + b)) / 2           in (0, 1), → 0 for x → −∞ and → 1 for x → +∞
//
// The numerical trap: for x ≪ 0, x + √(x² + b) subtracts two nearly equal numbers (at x = −1e4
// in f32 it gives 0, not 2e−4). Multiplying by (s − x)/(s − x), s = √(x² + b), gives
// x + s = b / (s − x), a sum of two positives: exact to rounding. So for x < 0
//   y = b / (2(s − x))        dy/dx = b / (2 s (s − x))
//
// Highway's skeleton re-includes this file once per SIMD target (foreach_target.h), so
// everything that is not per-target code sits under `#if HWY_ONCE`.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/gradcheck.h"
#include "autograd/node.h"
#include "autograd/registry.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "framework/parallel.h"
#include "framework/random.h"
#include "framework/tensor.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "examples/04_new_op.cc"
#include "framework/hwy_kernel.h"  // foreach_target, highway, FINCH_DISPATCH
#include "hwy/targets.h"

// ---- step 2: the kernel, compiled once per target (SSE4, AVX2, AVX-512, NEON, scalar) ----
HWY_BEFORE_NAMESPACE();
namespace course::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// y[i] = squareplus(x[i]) over whole vectors (both branches computed, one selected per lane),
// then the tail through a padded buffer so the last elements run the very same instructions.
void SquareplusF32(const float* x, float* y, int64_t n, float b) {
  const hn::ScalableTag<float> d;
  const int64_t N = int64_t(hn::Lanes(d));
  const auto vb = hn::Set(d, b), half = hn::Set(d, 0.5f);
  auto f = [&](auto v) {
    const auto s = hn::Sqrt(hn::MulAdd(v, v, vb));
    const auto pos = hn::Mul(hn::Add(v, s), half);                    // x ≥ 0: (x + s)/2
    const auto neg = hn::Div(hn::Mul(vb, half), hn::Sub(s, v));       // x < 0: b/(2(s − x))
    return hn::IfThenElse(hn::Lt(v, hn::Zero(d)), neg, pos);
  };
  int64_t i = 0;
  for (; i + N <= n; i += N) hn::StoreU(f(hn::LoadU(d, x + i)), d, y + i);
  if (i < n) {
    HWY_ALIGN float bx[HWY_MAX_BYTES / sizeof(float)] = {}, by[HWY_MAX_BYTES / sizeof(float)];
    std::memcpy(bx, x + i, size_t(n - i) * sizeof(float));
    hn::Store(f(hn::Load(d, bx)), d, by);
    std::memcpy(y + i, by, size_t(n - i) * sizeof(float));
  }
}
}  // namespace course::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace course {
using namespace finch;
HWY_EXPORT(SquareplusF32);

// ---- step 1: the scalar reference (F32 and F64), plain loops; it never leaves the tree ----
// x [any shape] -> y [same shape], contiguous.
Tensor squareplus_reference(const Tensor& x, double b) {
  Tensor xc = x.contiguous(), y = empty(x.shape(), x.dtype());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T* px = xc.data<T>();
      T* py = y.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const T s = std::sqrt(px[i] * px[i] + T(b));
        py[i] = px[i] < T(0) ? T(b) / (T(2) * (s - px[i])) : (px[i] + s) / T(2);
      }
    }
  });
  return y;
}

// The operator: validates (one sentence per bad input), then picks the kernel. A hostile b
// (0, negative, NaN) would make √(x² + b) NaN at x = 0: refused, not computed.
Tensor squareplus_op(const Tensor& x, double b) {
  if (!(b > 0) || !std::isfinite(b)) fail("squareplus: expected b > 0 and finite, got ", b);
  if (x.dtype() != DType::f32 && x.dtype() != DType::f64)
    fail("squareplus: expected an F32 or F64 tensor, got ", dtype_name(x.dtype()));
  if (x.dtype() == DType::f64) return squareplus_reference(x, b);  // f64 is for checks only
  Tensor xc = x.contiguous(), y = empty(x.shape(), DType::f32);
  const float* px = xc.data<float>();
  float* py = y.data<float>();
  // Elementwise and memory bound: split into chunks of at least 16 K elements over the pool.
  parallel_for(0, x.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
    FINCH_DISPATCH(SquareplusF32)(px + lo, py + lo, hi - lo, float(b));
  });
  return y;
}

// dx = dy · (1 + x/s) / 2, and dy · b / (2 s (s − x)) for x < 0 (no cancellation) — plain loops:
// the backward is not where the time goes here.
Tensor squareplus_backward(const Tensor& dy, const Tensor& x, double b) {
  Tensor dyc = dy.contiguous().to(x.dtype()), xc = x.contiguous(), dx = empty(x.shape(), x.dtype());
  visit_dtype(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T *pg = dyc.data<T>(), *px = xc.data<T>();
      T* pd = dx.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        const T s = std::sqrt(px[i] * px[i] + T(b));
        pd[i] = pg[i] * (px[i] < T(0) ? T(b) / (T(2) * s * (s - px[i])) : (T(1) + px[i] / s) / T(2));
      }
    }
  });
  return dx;
}

// ---- step 3: the autograd rule, forward and backward side by side ----
Tensor squareplus(const Tensor& x, double b = 4.0) {
  const bool rec = autograd::should_record({x});
  NoGradGuard ng;  // the kernels may take raw views freely
  Tensor y = squareplus_op(x, b);
  // The backward needs x, saved detached (a saved tensor with its grad_fn would be a cycle).
  if (rec)
    autograd::record("squareplus", {x}, {y}, [x = x.detach(), b](const autograd::Grads& g, const autograd::Needs&) {
      return autograd::Grads{squareplus_backward(g[0], x, b)};
    });
  return y;
}

// Largest |fast − reference| / (1e-6 + 1e-6·|reference|): at most 1 means within tolerance.
double worst_ratio(const Tensor& fast, const Tensor& ref) {
  const std::vector<double> a = fast.to_vector<double>(), r = ref.to_vector<double>();
  double w = 0;
  for (size_t i = 0; i < a.size(); ++i) w = std::max(w, std::fabs(a[i] - r[i]) / (1e-6 + 1e-6 * std::fabs(r[i])));
  return w;
}
}  // namespace course

int main() {
  using namespace finch;
  set_num_threads(1);
  // An op outside finch's tree registers its rule name (in-tree ops list it in registry.cc).
  autograd::register_extension_rule("squareplus");
  Generator gen(4);

  // A few values: squareplus(0) = √b/2 = 1, and it approaches relu away from 0.
  const Tensor probe = from_vector<float>({-4, -1, 0, 1, 4}, {5});
  std::printf("x              %s\n", probe.str().c_str());
  std::printf("squareplus(x)  %s\n", course::squareplus(probe).str().c_str());
  std::printf("relu(x)        %s\n", relu(probe).str().c_str());
  // Far left, where the textbook formula cancels to 0 in f32 (b / (2(s − x)) = 1e−4 here).
  const Tensor far = from_vector<float>({-1e4f}, {1});
  std::printf("squareplus(-1e4) = %.6e (textbook formula in f32: %.6e)\n", course::squareplus(far).item(),
              double((-1e4f + std::sqrt(1e8f + 4.0f)) / 2.0f));

  // ---- step 4a: kernel vs reference, every compiled target this CPU runs, the edge sizes ----
  // Sizes 1–10, powers of two ±1 (vector-width tails), a big one; a strided (transposed) input.
  std::vector<int64_t> sizes;
  for (int64_t n = 1; n <= 10; ++n) sizes.push_back(n);
  for (int64_t p = 16; p <= 64; p *= 2) sizes.insert(sizes.end(), {p - 1, p, p + 1});
  sizes.push_back(100000);
  // Every compiled target this CPU runs. On aarch64 only NEON is compiled, and Highway 1.0.3
  // reports it as supported only with AES, which a Raspberry Pi 4 lacks: there the static
  // target is the one FINCH_DISPATCH calls (tests/hwy_targets.h does the same).
  std::vector<int64_t> to_test;
  for (auto t : hwy::SupportedAndGeneratedTargets()) to_test.push_back(int64_t(t));
#if HWY_ARCH_ARM_A64
  if (to_test.empty()) to_test.push_back(int64_t(HWY_STATIC_TARGET));
#endif
  int64_t targets = 0, cases = 0;
  double worst = 0;
  for (int64_t target : to_test) {
    hwy::SetSupportedTargetsForTest(target);
    std::fprintf(stderr, "target %s\n", hwy::TargetName(target));
    ++targets;
    for (int64_t n : sizes) {
      Tensor x = randn({n}, gen) * 5.0;
      if (n == 100000) x = x * 1000.0;  // magnitudes up to ~2e4: the cancellation region
      // Against the f64 reference: the f32 kernel must be accurate, not only equal to f32 loops.
      worst = std::max(worst, course::worst_ratio(course::squareplus(x), course::squareplus_reference(x.to(DType::f64), 4.0)));
      ++cases;
    }
    const Tensor m = randn({7, 9}, gen).t();  // strided: the operator makes it contiguous first
    worst = std::max(worst, course::worst_ratio(course::squareplus(m), course::squareplus_reference(m, 4.0)));
  }
  hwy::SetSupportedTargetsForTest(0);  // back to the best target
  std::printf("kernel == reference (atol 1e-6 + rtol 1e-6) on every compiled target, %lld sizes each: %s\n",
              static_cast<long long>(cases / std::max<int64_t>(targets, 1)), targets > 0 && worst <= 1 ? "yes" : "NO");

  // ---- step 4b: the gradient, by finite differences in f64 ----
  Tensor x64 = (randn({4, 6}, gen, DType::f64) * 3.0).set_requires_grad(true);
  const GradcheckResult r = gradcheck(
      [](const std::vector<Tensor>& in) { return std::vector<Tensor>{course::squareplus(in[0])}; }, {x64});
  std::printf("gradcheck squareplus [4, 6] f64: %s\n", r.ok ? "ok" : r.message.c_str());

  // And the backward used for real: d/dx Σ squareplus(x) at the probe points.
  Tensor xp = probe.clone().set_requires_grad(true);
  backward(sum(course::squareplus(xp)));
  std::printf("dy/dx          %s\n", xp.grad().str().c_str());

  // A hostile parameter is one sentence.
  try {
    course::squareplus(probe, -1.0);
    return 1;
  } catch (const Error& e) {
    std::printf("b = -1: %s\n", e.what());
  }
  return r.ok && worst <= 1 ? 0 : 1;
}
#endif  // HWY_ONCE
