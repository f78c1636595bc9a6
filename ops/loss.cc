// Cross entropy, BCE with logits and MSE: validation, fused parallel kernels, references.
//
// Shapes: cross entropy logits viewed as [N, C, S] with targets [N, S]; the elementwise losses
// view their inputs flat. Reductions add per-block partial sums over FIXED blocks in order, so
// a loss has the same bits for every thread count.
#include "ops/loss.h"

#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "framework/parallel.h"

namespace finch::ops {

namespace {

constexpr int64_t kSumBlock = 16384;

// Σ_blocks block_sum(i0, i1) over fixed blocks of [0, n), blocks computed in parallel.
template <typename F>
double blocked_sum(int64_t n, F&& block_sum) {
  const int64_t blocks = (n + kSumBlock - 1) / kSumBlock;
  std::vector<double> part(size_t(blocks), 0.0);
  parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b)
      part[size_t(b)] = block_sum(b * kSumBlock, std::min(n, (b + 1) * kSumBlock));
  });
  double s = 0;
  for (double v : part) s += v;
  return s;
}

void check_float(const Tensor& t, const char* op, const char* name) {
  if (t.dtype() != DType::f32 && t.dtype() != DType::f64)
    fail(op, ": expected ", name, " of dtype F32 or F64, got ", dtype_name(t.dtype()));
}

// ---------------------------------- cross entropy ----------------------------------
struct CeDims {
  int64_t N, C, S;
  Shape loss_shape;  // the per-sample loss shape (the target's)
};

CeDims ce_dims(const Tensor& logits, const Tensor& target, const char* op) {
  check_float(logits, op, "logits");
  if (target.dtype() != DType::i64)
    fail(op, ": expected target class indices of dtype I64, got ", dtype_name(target.dtype()));
  CeDims d{1, 0, 1, {}};
  Shape expect;
  if (logits.dim() == 1) {
    d.C = logits.size(0);
  } else if (logits.dim() >= 2) {
    d.N = logits.size(0);
    d.C = logits.size(1);
    expect.push_back(d.N);
    for (int64_t i = 2; i < logits.dim(); ++i) {
      d.S *= logits.size(i);
      expect.push_back(logits.size(i));
    }
  } else {
    fail(op, ": expected logits [N, C, ...] or [C], got a 0-d tensor");
  }
  if (target.shape() != expect)
    fail(op, ": expected target of shape ", shape_str(expect), " for logits of shape ",
         shape_str(logits.shape()), ", got ", shape_str(target.shape()));
  if (d.C < 1) fail(op, ": expected at least one class, got logits of shape ", shape_str(logits.shape()));
  d.loss_shape = expect;
  return d;
}

std::vector<int64_t> checked_targets(const Tensor& target, int64_t C, int64_t ignore_index,
                                     const char* op) {
  std::vector<int64_t> t = target.to_vector<int64_t>();
  for (size_t i = 0; i < t.size(); ++i)
    if (t[i] != ignore_index && (t[i] < 0 || t[i] >= C))
      fail(op, ": target ", t[i], " at flat position ", i, " is out of range for ", C,
           " classes [0, ", C, ") (and is not ignore_index ", ignore_index, ")");
  return t;
}

// Per-sample log-sum-exp and loss for samples (n, 0..S-1) of logits x [N, C, S].
template <typename T>
void ce_forward_batch(const T* x, const int64_t* t, int64_t C, int64_t S, int64_t ignore,
                      double eps, T* lse, double* loss, std::vector<double>& scratch) {
  if (S == 1) {
    double se, sx;
    T m;
    if constexpr (std::is_same_v<T, float>) {
      loss_kernels::row_stats(x, C, &m, &se, &sx);
    } else {
      m = x[0];
      for (int64_t c = 1; c < C; ++c) m = std::max(m, x[c]);
      se = 0, sx = 0;
      for (int64_t c = 0; c < C; ++c) {
        se += std::exp(x[c] - m);
        sx += x[c];
      }
    }
    const double l = double(m) + std::log(se);
    lse[0] = T(l);
    loss[0] = t[0] == ignore ? 0.0 : (1 - eps) * (l - double(x[t[0]])) + eps * (l - sx / double(C));
    return;
  }
  // Spatial targets: loop classes outside so the inner loop runs over contiguous s.
  scratch.assign(size_t(3 * S), 0.0);
  double *mx = scratch.data(), *se = mx + S, *sx = se + S;
  for (int64_t s = 0; s < S; ++s) mx[s] = x[s];
  for (int64_t c = 1; c < C; ++c)
    for (int64_t s = 0; s < S; ++s) mx[s] = std::max(mx[s], double(x[c * S + s]));
  for (int64_t c = 0; c < C; ++c)
    for (int64_t s = 0; s < S; ++s) {
      se[s] += std::exp(double(x[c * S + s]) - mx[s]);
      sx[s] += x[c * S + s];
    }
  for (int64_t s = 0; s < S; ++s) {
    const double l = mx[s] + std::log(se[s]);
    lse[s] = T(l);
    loss[s] = t[s] == ignore ? 0.0
                             : (1 - eps) * (l - double(x[t[s] * S + s])) + eps * (l - sx[s] / double(C));
  }
}

template <typename T>
void ce_forward_impl(const Tensor& x, const std::vector<int64_t>& t, const CeDims& d,
                     int64_t ignore, double eps, Tensor& lse, std::vector<double>& loss) {
  const T* px = x.data<T>();
  T* pl = lse.data<T>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(d.C * d.S, 1));
  parallel_for(0, d.N, grain, [&](int64_t n0, int64_t n1) {
    std::vector<double> scratch;
    for (int64_t n = n0; n < n1; ++n)
      ce_forward_batch(px + n * d.C * d.S, t.data() + n * d.S, d.C, d.S, ignore, eps,
                       pl + n * d.S, loss.data() + n * d.S, scratch);
  });
}

template <typename T>
void ce_backward_impl(const Tensor& x, const std::vector<int64_t>& t, const CeDims& d,
                      const Tensor& lse, const std::vector<double>& g, int64_t ignore, double eps,
                      Tensor& dx) {
  const T* px = x.data<T>();
  const T* pl = lse.data<T>();
  T* pd = dx.data<T>();
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(d.C * d.S, 1));
  parallel_for(0, d.N, grain, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n) {
      const T* xn = px + n * d.C * d.S;
      T* dn = pd + n * d.C * d.S;
      for (int64_t s = 0; s < d.S; ++s) {
        const int64_t i = n * d.S + s;
        // Ignored samples get g = 0, which zeroes their whole softmax row below.
        const double gi = t[size_t(i)] == ignore ? 0.0 : g.size() == 1 ? g[0] : g[size_t(i)];
        const double off = -gi * eps / double(d.C);
        if (d.S == 1) {
          if constexpr (std::is_same_v<T, float>) {
            loss_kernels::row_softmax_grad(xn, dn, d.C, pl[i], float(gi), float(off));
          } else {
            for (int64_t c = 0; c < d.C; ++c) dn[c] = gi * std::exp(xn[c] - pl[i]) + off;
          }
        } else {
          for (int64_t c = 0; c < d.C; ++c)
            dn[c * d.S + s] = T(gi * std::exp(double(xn[c * d.S + s]) - double(pl[i])) + off);
        }
        if (t[size_t(i)] != ignore) dn[t[size_t(i)] * d.S + s] -= T(gi * (1 - eps));
      }
    }
  });
}

// The per-sample loss gradients g_i (one value when the loss was reduced).
std::vector<double> loss_grads(const Tensor& grad_loss, Reduction red, double mean_div,
                               const Shape& loss_shape, const char* op) {
  if (red == Reduction::none) {
    if (grad_loss.shape() != loss_shape)
      fail(op, ": expected a loss gradient of shape ", shape_str(loss_shape), ", got ",
           shape_str(grad_loss.shape()));
    return grad_loss.to_vector<double>();
  }
  if (grad_loss.numel() != 1)
    fail(op, ": expected a one-element loss gradient for a reduced loss, got shape ",
         shape_str(grad_loss.shape()));
  const double g = grad_loss.item();
  return {red == Reduction::mean ? g / mean_div : g};
}

Tensor reduced_loss(const std::vector<double>& per, Reduction red, double count,
                    const Shape& shape, DType dtype) {
  if (red == Reduction::none) return from_vector(per, shape).to(dtype);
  double s = blocked_sum(int64_t(per.size()), [&](int64_t i0, int64_t i1) {
    double a = 0;
    for (int64_t i = i0; i < i1; ++i) a += per[size_t(i)];
    return a;
  });
  if (red == Reduction::mean) s /= count;
  return scalar_tensor(s, dtype);
}

void check_smoothing(double eps, const char* op) {
  if (!(eps >= 0.0 && eps <= 1.0))
    fail(op, ": expected label_smoothing in [0, 1], got ", eps);
}

}  // namespace

CrossEntropyResult cross_entropy(const Tensor& logits, const Tensor& target,
                                 Reduction reduction, int64_t ignore_index,
                                 double label_smoothing) {
  const CeDims d = ce_dims(logits, target, "cross_entropy");
  check_smoothing(label_smoothing, "cross_entropy");
  const std::vector<int64_t> t = checked_targets(target, d.C, ignore_index, "cross_entropy");
  const Tensor x = logits.contiguous();
  CrossEntropyResult r;
  r.lse = empty({d.N * d.S}, x.dtype());
  std::vector<double> per(size_t(d.N * d.S));
  if (x.dtype() == DType::f32)
    ce_forward_impl<float>(x, t, d, ignore_index, label_smoothing, r.lse, per);
  else
    ce_forward_impl<double>(x, t, d, ignore_index, label_smoothing, r.lse, per);
  for (int64_t v : t) r.count += v != ignore_index;
  r.loss = reduced_loss(per, reduction, r.count, d.loss_shape, x.dtype());
  return r;
}

Tensor cross_entropy_backward(const Tensor& grad_loss, const Tensor& logits, const Tensor& target,
                              const Tensor& lse, double count, Reduction reduction,
                              int64_t ignore_index, double label_smoothing) {
  const CeDims d = ce_dims(logits, target, "cross_entropy_backward");
  const std::vector<int64_t> t =
      checked_targets(target, d.C, ignore_index, "cross_entropy_backward");
  if (lse.numel() != d.N * d.S || lse.dtype() != logits.dtype())
    fail("cross_entropy_backward: expected lse with one ", dtype_name(logits.dtype()),
         " value per sample (", d.N * d.S, "), got shape ", shape_str(lse.shape()));
  const std::vector<double> g = loss_grads(grad_loss, reduction, count, d.loss_shape,
                                           "cross_entropy_backward");
  const Tensor x = logits.contiguous(), l = lse.contiguous();
  Tensor dx = empty(x.shape(), x.dtype());
  if (x.dtype() == DType::f32)
    ce_backward_impl<float>(x, t, d, l, g, ignore_index, label_smoothing, dx);
  else
    ce_backward_impl<double>(x, t, d, l, g, ignore_index, label_smoothing, dx);
  return dx;
}

// Reference: for every sample, log_softmax over classes in double, then torch's formula.
CrossEntropyResult cross_entropy_reference(const Tensor& logits, const Tensor& target,
                                           Reduction reduction, int64_t ignore_index,
                                           double eps) {
  const CeDims d = ce_dims(logits, target, "cross_entropy_reference");
  const auto t = checked_targets(target, d.C, ignore_index, "cross_entropy_reference");
  const auto xv = logits.to_vector<double>();
  std::vector<double> per(size_t(d.N * d.S)), lse(per.size());
  CrossEntropyResult r;
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t s = 0; s < d.S; ++s) {
      auto at = [&](int64_t c) { return xv[size_t((n * d.C + c) * d.S + s)]; };
      double m = -std::numeric_limits<double>::infinity();
      for (int64_t c = 0; c < d.C; ++c) m = std::max(m, at(c));
      double se = 0;
      for (int64_t c = 0; c < d.C; ++c) se += std::exp(at(c) - m);
      const double l = m + std::log(se);
      const size_t i = size_t(n * d.S + s);
      lse[i] = l;
      if (t[i] == ignore_index) continue;
      r.count += 1;
      double smooth = 0;  // Σ_c -log p_c
      for (int64_t c = 0; c < d.C; ++c) smooth += l - at(c);
      per[i] = (1 - eps) * (l - at(t[i])) + eps * smooth / double(d.C);
    }
  r.lse = from_vector(lse, {d.N * d.S}).to(logits.dtype());
  double s = 0;
  for (double v : per) s += v;
  r.loss = reduction == Reduction::none ? from_vector(per, d.loss_shape).to(logits.dtype())
           : reduction == Reduction::sum ? scalar_tensor(s, logits.dtype())
                                             : scalar_tensor(s / r.count, logits.dtype());
  return r;
}

Tensor cross_entropy_backward_reference(const Tensor& grad_loss, const Tensor& logits,
                                        const Tensor& target, Reduction reduction,
                                        int64_t ignore_index, double eps) {
  const CrossEntropyResult f = cross_entropy_reference(logits, target, Reduction::none,
                                                       ignore_index, eps);
  const CeDims d = ce_dims(logits, target, "cross_entropy_backward_reference");
  const auto t = target.to_vector<int64_t>();
  const auto xv = logits.to_vector<double>();
  const auto lse = f.lse.to_vector<double>();
  const auto g = loss_grads(grad_loss, reduction, f.count, d.loss_shape,
                            "cross_entropy_backward_reference");
  std::vector<double> dx(xv.size(), 0.0);
  for (int64_t n = 0; n < d.N; ++n)
    for (int64_t s = 0; s < d.S; ++s) {
      const size_t i = size_t(n * d.S + s);
      if (t[i] == ignore_index) continue;
      const double gi = g.size() == 1 ? g[0] : g[i];
      for (int64_t c = 0; c < d.C; ++c) {
        const size_t k = size_t((n * d.C + c) * d.S + s);
        const double p = std::exp(xv[k] - lse[i]);
        dx[k] = gi * (p - (c == t[i] ? 1 - eps : 0.0) - eps / double(d.C));
      }
    }
  return from_vector(dx, logits.shape()).to(logits.dtype());
}

// ------------------------------ BCE with logits and MSE ------------------------------
namespace {

// softplus(-x) = log(1 + exp(-x)) without overflow, and sigmoid(-x) = 1 - sigmoid(x).
inline double softplus_neg(double x) { return std::max(-x, 0.0) + std::log1p(std::exp(-std::fabs(x))); }
inline double sigmoid_neg(double x) {
  if (x >= 0) {
    const double e = std::exp(-x);
    return e / (1 + e);
  }
  return 1 / (1 + std::exp(x));
}

// pos_weight broadcast over the last dim: P = 0 (none), 1 (one value) or x.size(-1).
int64_t pos_weight_period(const Tensor& x, const Tensor& pw, const char* op) {
  if (!pw.defined()) return 0;
  const int64_t last = x.dim() ? x.size(-1) : 1;
  if (pw.dim() > 1 || (pw.numel() != last && pw.numel() != 1))
    fail(op, ": expected pos_weight [C] with C = the input's last dim (", last,
         ") or a single value, got shape ", shape_str(pw.shape()));
  return pw.numel();
}

void check_pair(const Tensor& x, const Tensor& t, const char* op) {
  check_float(x, op, "input");
  if (t.shape() != x.shape() || t.dtype() != x.dtype())
    fail(op, ": expected a target of the input's shape ", shape_str(x.shape()), " and dtype ",
         dtype_name(x.dtype()), ", got ", shape_str(t.shape()), " ", dtype_name(t.dtype()));
}

// Evaluates per-element values f(i) into `per` (reduction none) or sums them in fixed blocks.
template <typename F>
Tensor elementwise_loss(int64_t n, Reduction red, const Shape& shape, DType dtype, F&& f) {
  if (red == Reduction::none) {
    Tensor out = empty(shape, dtype);
    float* o32 = dtype == DType::f32 ? out.data<float>() : nullptr;
    double* o64 = dtype == DType::f64 ? out.data<double>() : nullptr;
    parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i)
        if (o32) o32[i] = float(f(i));
        else o64[i] = f(i);
    });
    return out;
  }
  double s = blocked_sum(n, [&](int64_t i0, int64_t i1) {
    double a = 0;
    for (int64_t i = i0; i < i1; ++i) a += f(i);
    return a;
  });
  if (red == Reduction::mean) s /= double(n);
  return scalar_tensor(s, dtype);
}

// Reads element i of a contiguous F32/F64 tensor as double.
struct Reader {
  const void* p;
  bool f32;
  explicit Reader(const Tensor& t)
      : p(t.defined() ? t.raw_data() : nullptr), f32(t.defined() && t.dtype() == DType::f32) {}
  double operator[](int64_t i) const {
    return f32 ? double(static_cast<const float*>(p)[i]) : static_cast<const double*>(p)[i];
  }
};

}  // namespace

Tensor bce_with_logits(const Tensor& x_in, const Tensor& t_in, const Tensor& pw_in,
                       Reduction reduction) {
  check_pair(x_in, t_in, "bce_with_logits");
  const int64_t P = pos_weight_period(x_in, pw_in, "bce_with_logits");
  const Tensor x = x_in.contiguous(), t = t_in.contiguous();
  const Tensor pw = P ? pw_in.to(x.dtype()).contiguous() : Tensor();
  const Reader rx(x), rt(t), rp(pw);
  return elementwise_loss(x.numel(), reduction, x.shape(), x.dtype(), [&](int64_t i) {
    const double xi = rx[i], ti = rt[i];
    const double lw = P ? 1 + (rp[i % P] - 1) * ti : 1.0;
    return (1 - ti) * xi + lw * softplus_neg(xi);
  });
}

BceGrads bce_with_logits_backward(const Tensor& grad_loss, const Tensor& x_in, const Tensor& t_in,
                                  const Tensor& pw_in, Reduction reduction, bool need_dx,
                                  bool need_dtarget, bool need_dpos_weight) {
  const char* op = "bce_with_logits_backward";
  check_pair(x_in, t_in, op);
  const int64_t P = pos_weight_period(x_in, pw_in, op);
  const Tensor x = x_in.contiguous(), t = t_in.contiguous();
  const Tensor pw = P ? pw_in.to(x.dtype()).contiguous() : Tensor();
  const int64_t n = x.numel();
  const std::vector<double> g = loss_grads(grad_loss, reduction, double(n), x.shape(), op);
  const Reader rx(x), rt(t), rp(pw);
  BceGrads r;
  if (need_dx) r.dx = empty(x.shape(), x.dtype());
  if (need_dtarget) r.dtarget = empty(x.shape(), x.dtype());
  auto store = [&](const Tensor& out, int64_t i, double v) {
    if (out.dtype() == DType::f32) out.data<float>()[i] = float(v);
    else out.data<double>()[i] = v;
  };
  if (need_dx || need_dtarget)
    parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const double gi = g.size() == 1 ? g[0] : g[size_t(i)];
        const double xi = rx[i], ti = rt[i], pwi = P ? rp[i % P] : 1.0;
        // dl/dx = (1-t) - (1 + (pw-1)·t)·sigmoid(-x);  dl/dt = -x + (pw-1)·softplus(-x).
        if (need_dx) store(r.dx, i, gi * ((1 - ti) - (1 + (pwi - 1) * ti) * sigmoid_neg(xi)));
        if (need_dtarget) store(r.dtarget, i, gi * (-xi + (pwi - 1) * softplus_neg(xi)));
      }
    });
  if (need_dpos_weight && P) {
    // dl/dpw[c] = Σ over elements of column c of g·t·softplus(-x); serial (one pass, small).
    std::vector<double> dpw(size_t(P), 0.0);
    for (int64_t i = 0; i < n; ++i)
      dpw[size_t(i % P)] += (g.size() == 1 ? g[0] : g[size_t(i)]) * rt[i] * softplus_neg(rx[i]);
    r.dpos_weight = from_vector(dpw, pw_in.shape()).to(pw_in.dtype());
  }
  return r;
}

Tensor bce_with_logits_reference(const Tensor& x, const Tensor& target, const Tensor& pos_weight,
                                 Reduction reduction) {
  check_pair(x, target, "bce_with_logits_reference");
  const auto xv = x.to_vector<double>(), tv = target.to_vector<double>();
  const auto pv = pos_weight.defined() ? pos_weight.to_vector<double>() : std::vector<double>();
  std::vector<double> per(xv.size());
  double s = 0;
  for (size_t i = 0; i < xv.size(); ++i) {
    // Textbook form: -[pw·t·log σ(x) + (1-t)·log(1-σ(x))], in double.
    const double sig = 1 / (1 + std::exp(-xv[i]));
    const double pw = pv.empty() ? 1.0 : pv[i % pv.size()];
    per[i] = -(pw * tv[i] * std::log(sig) + (1 - tv[i]) * std::log(1 - sig));
    s += per[i];
  }
  if (reduction == Reduction::none) return from_vector(per, x.shape()).to(x.dtype());
  return scalar_tensor(reduction == Reduction::sum ? s : s / double(xv.size()), x.dtype());
}

Tensor mse_loss(const Tensor& in, const Tensor& tg, Reduction reduction) {
  check_pair(in, tg, "mse_loss");
  const Tensor x = in.contiguous(), t = tg.contiguous();
  const Reader rx(x), rt(t);
  return elementwise_loss(x.numel(), reduction, x.shape(), x.dtype(), [&](int64_t i) {
    const double d = rx[i] - rt[i];
    return d * d;
  });
}

Tensor mse_loss_backward(const Tensor& grad_loss, const Tensor& in, const Tensor& tg,
                         Reduction reduction) {
  check_pair(in, tg, "mse_loss_backward");
  const Tensor x = in.contiguous(), t = tg.contiguous();
  const int64_t n = x.numel();
  const std::vector<double> g =
      loss_grads(grad_loss, reduction, double(n), x.shape(), "mse_loss_backward");
  const Reader rx(x), rt(t);
  Tensor dx = empty(x.shape(), x.dtype());
  float* d32 = dx.dtype() == DType::f32 ? dx.data<float>() : nullptr;
  double* d64 = dx.dtype() == DType::f64 ? dx.data<double>() : nullptr;
  parallel_for(0, n, 16384, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const double v = 2 * (g.size() == 1 ? g[0] : g[size_t(i)]) * (rx[i] - rt[i]);
      if (d32) d32[i] = float(v);
      else d64[i] = v;
    }
  });
  return dx;
}

Tensor mse_loss_reference(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "mse_loss_reference");
  const auto xv = input.to_vector<double>(), tv = target.to_vector<double>();
  std::vector<double> per(xv.size());
  double s = 0;
  for (size_t i = 0; i < xv.size(); ++i) s += per[i] = (xv[i] - tv[i]) * (xv[i] - tv[i]);
  if (reduction == Reduction::none) return from_vector(per, input.shape()).to(input.dtype());
  return scalar_tensor(reduction == Reduction::sum ? s : s / double(xv.size()), input.dtype());
}

}  // namespace finch::ops
