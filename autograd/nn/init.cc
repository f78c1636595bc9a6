// nn::init: the fill loops and torch's fan/gain formulas.
#include "autograd/nn/init.h"

#include <cmath>
#include <vector>

#include "framework/grad_mode.h"

namespace finch::nn::init {

namespace {

Generator& gen_or_default(Generator* g) { return g ? *g : default_generator(); }

// Calls draw() once per element in row-major order and stores the result, for f32 or f64
// tensors of any layout (non-contiguous ones are filled through a contiguous copy).
template <typename Draw>
Tensor& fill_with(Tensor& t, const char* op, Draw&& draw) {
  if (!t.defined()) fail("nn::init::", op, ": the tensor is undefined");
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
    fail("nn::init::", op, ": expected an f32 or f64 tensor, got ", dtype_name(t.dtype()));
  NoGradGuard ng;
  Tensor dst = t.is_contiguous() ? t : empty(t.shape(), t.dtype());
  const int64_t n = dst.numel();
  if (dst.dtype() == DType::f32) {
    float* p = dst.data<float>();
    for (int64_t i = 0; i < n; ++i) p[i] = float(draw());
  } else {
    double* p = dst.data<double>();
    for (int64_t i = 0; i < n; ++i) p[i] = draw();
  }
  if (!dst.is_same(t)) t.copy_(dst);
  return t;
}

// Uniform in [0, 1) with the tensor's precision (24 bits for f32, 53 for f64).
double unit(Generator& g, DType dt) { return dt == DType::f32 ? g.uniform() : g.uniform_double(); }

// Inverse error function: Giles' single-precision polynomial ("Approximating the erfinv
// function", GPU Computing Gems 2011) as a start, then two Newton steps on erf(x) - y in
// double, which brings it to double accuracy.
double erfinv(double y) {
  if (y <= -1.0) return -INFINITY;
  if (y >= 1.0) return INFINITY;
  double w = -std::log((1.0 - y) * (1.0 + y)), x;
  if (w < 5.0) {
    w -= 2.5;
    double p = 2.81022636e-08;
    p = 3.43273939e-07 + p * w; p = -3.5233877e-06 + p * w; p = -4.39150654e-06 + p * w;
    p = 0.00021858087 + p * w; p = -0.00125372503 + p * w; p = -0.00417768164 + p * w;
    p = 0.246640727 + p * w; p = 1.50140941 + p * w;
    x = p * y;
  } else {
    w = std::sqrt(w) - 3.0;
    double p = -0.000200214257;
    p = 0.000100950558 + p * w; p = 0.00134934322 + p * w; p = -0.00367342844 + p * w;
    p = 0.00573950773 + p * w; p = -0.0076224613 + p * w; p = 0.00943887047 + p * w;
    p = 1.00167406 + p * w; p = 2.83297682 + p * w;
    x = p * y;
  }
  for (int i = 0; i < 2; ++i)
    x -= (std::erf(x) - y) / (2.0 / std::sqrt(M_PI) * std::exp(-x * x));
  return x;
}

double fan(const Tensor& t, const std::string& mode, const char* op) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  if (mode == "fan_in") return double(fan_in);
  if (mode == "fan_out") return double(fan_out);
  fail("nn::init::", op, ": mode must be \"fan_in\" or \"fan_out\", got \"", mode, "\"");
}

}  // namespace

std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t) {
  if (t.dim() < 2)
    fail("nn::init: fan in and fan out need a tensor with at least 2 dims, got shape ",
         shape_str(t.shape()));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.size(d);
  return {t.size(1) * receptive, t.size(0) * receptive};
}

double calculate_gain(const std::string& nl, double param) {
  if (nl == "linear" || nl == "conv1d" || nl == "conv2d" || nl == "conv3d" || nl == "sigmoid" ||
      nl == "conv_transpose1d" || nl == "conv_transpose2d" || nl == "conv_transpose3d")
    return 1.0;
  if (nl == "tanh") return 5.0 / 3.0;
  if (nl == "relu") return std::sqrt(2.0);
  if (nl == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  if (nl == "selu") return 3.0 / 4.0;
  fail("nn::init::calculate_gain: unsupported nonlinearity \"", nl, "\"");
}

Tensor& uniform_(Tensor& t, double a, double b, Generator* gen) {
  Generator& g = gen_or_default(gen);
  const DType dt = t.defined() ? t.dtype() : DType::f32;
  return fill_with(t, "uniform_", [&] { return a + (b - a) * unit(g, dt); });
}

Tensor& normal_(Tensor& t, double mean, double std, Generator* gen) {
  Generator& g = gen_or_default(gen);
  return fill_with(t, "normal_", [&] { return mean + std * double(g.normal()); });
}

Tensor& constant_(Tensor& t, double value) {
  return fill_with(t, "constant_", [&] { return value; });
}
Tensor& zeros_(Tensor& t) { return constant_(t, 0.0); }
Tensor& ones_(Tensor& t) { return constant_(t, 1.0); }

Tensor& kaiming_uniform_(Tensor& t, double a, const std::string& mode, const std::string& nl,
                         Generator* gen) {
  const double std = calculate_gain(nl, a) / std::sqrt(fan(t, mode, "kaiming_uniform_"));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(t, -bound, bound, gen);
}

Tensor& kaiming_normal_(Tensor& t, double a, const std::string& mode, const std::string& nl,
                        Generator* gen) {
  const double std = calculate_gain(nl, a) / std::sqrt(fan(t, mode, "kaiming_normal_"));
  return normal_(t, 0.0, std, gen);
}

Tensor& xavier_uniform_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  const double std = gain * std::sqrt(2.0 / double(fan_in + fan_out));
  const double bound = std::sqrt(3.0) * std;
  return uniform_(t, -bound, bound, gen);
}

Tensor& xavier_normal_(Tensor& t, double gain, Generator* gen) {
  auto [fan_in, fan_out] = calculate_fan_in_and_fan_out(t);
  return normal_(t, 0.0, gain * std::sqrt(2.0 / double(fan_in + fan_out)), gen);
}

Tensor& orthogonal_(Tensor& t, double gain, Generator* gen) {
  if (!t.defined() || t.dim() < 2 || t.numel() == 0)
    fail("nn::init::orthogonal_: expected a tensor with at least 2 dims and elements, got ",
         t.defined() ? shape_str(t.shape()) : std::string("an undefined tensor"));
  Generator& g = gen_or_default(gen);
  const int64_t rows = t.size(0), cols = t.numel() / rows;
  // The taller orientation: m >= n, columns made orthonormal by modified Gram-Schmidt in double
  // (on a Gaussian matrix it is well conditioned; MGS gives R a positive diagonal, which is
  // torch's sign fix of the QR). The draws fill [rows, cols] row-major as torch's normal_ does.
  const bool tall = rows >= cols;
  const int64_t m = tall ? rows : cols, n = tall ? cols : rows;
  std::vector<double> a(size_t(m * n));  // column j at a[j*m .. j*m + m)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c) {
      const double v = double(g.normal());
      a[size_t(tall ? c * m + r : r * m + c)] = v;
    }
  for (int64_t j = 0; j < n; ++j) {
    double* q = a.data() + j * m;
    for (int64_t k = 0; k < j; ++k) {
      const double* p = a.data() + k * m;
      double dot = 0;
      for (int64_t i = 0; i < m; ++i) dot += p[i] * q[i];
      for (int64_t i = 0; i < m; ++i) q[i] -= dot * p[i];
    }
    double norm = 0;
    for (int64_t i = 0; i < m; ++i) norm += q[i] * q[i];
    norm = std::sqrt(norm);
    if (!(norm > 1e-12)) fail("nn::init::orthogonal_: a degenerate draw (column ", j, " has norm ", norm, ")");
    for (int64_t i = 0; i < m; ++i) q[i] /= norm;
  }
  int64_t idx = 0;
  return fill_with(t, "orthogonal_", [&] {
    const int64_t r = idx / cols, c = idx % cols;
    ++idx;
    return gain * a[size_t(tall ? c * m + r : r * m + c)];
  });
}

Tensor& trunc_normal_(Tensor& t, double mean, double std, double a, double b, Generator* gen) {
  if (!(std > 0.0)) fail("nn::init::trunc_normal_: std must be positive, got ", std);
  if (!(a < b)) fail("nn::init::trunc_normal_: expected a < b, got a = ", a, ", b = ", b);
  Generator& g = gen_or_default(gen);
  auto cdf = [](double x) { return (1.0 + std::erf(x / std::sqrt(2.0))) / 2.0; };
  // Uniform on [2l-1, 2u-1], mapped through erfinv, is the standard normal truncated to
  // [(a-mean)/std, (b-mean)/std] divided by √2 (torch.nn.init._no_grad_trunc_normal_).
  const double l = cdf((a - mean) / std), u = cdf((b - mean) / std);
  return fill_with(t, "trunc_normal_", [&] {
    const double v = (2 * l - 1) + (2 * u - 2 * l) * g.uniform_double();
    const double x = mean + std * std::sqrt(2.0) * erfinv(v);
    return std::min(std::max(x, a), b);
  });
}

}  // namespace finch::nn::init
