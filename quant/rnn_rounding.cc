// Output-error rounding of recurrent weights (rnn_rounding.h).
#include "quant/rnn_rounding.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "kernels/qs8_rnn.h"
#include "ops/gemm.h"

namespace finch::quant {

void round_row_by_output_error(std::vector<double>& w, const std::vector<double>& s, std::vector<double>& hess) {
  const auto d = int64_t(w.size());
  if (int64_t(s.size()) != d || int64_t(hess.size()) != d * d)
    fail("round_row_by_output_error: expected ", d, " scales and a ", d, " x ", d, " Hessian, got ", s.size(), " and ",
         hess.size(), " values");
  auto H = [&](int64_t i, int64_t j) -> double& { return hess[size_t(i * d + j)]; };
  double mean = 0;
  for (int64_t j = 0; j < d; ++j) mean += H(j, j);
  mean = d ? mean / double(d) : 0;
  for (int64_t j = 0; j < d; ++j) {
    if (!(std::isfinite(w[size_t(j)]) && std::isfinite(s[size_t(j)]) && s[size_t(j)] >= 0 && std::isfinite(H(j, j))))
      fail("round_row_by_output_error: expected finite weights, scales >= 0 and a finite Hessian, found column ", j);
    if (H(j, j) <= 0) H(j, j) = 1;  // an input never seen: nothing to weigh
    H(j, j) += 0.01 * mean;
  }
  // H = R Rᵀ with R upper triangular (Cholesky from the last column), then U = R⁻¹: H⁻¹ = Uᵀ U,
  // the upper Cholesky factor of H⁻¹ that GPTQ's update reads.
  std::vector<double> R(size_t(d * d), 0.0), U(size_t(d * d), 0.0);
  for (int64_t j = d - 1; j >= 0; --j) {
    double v = H(j, j);
    for (int64_t k = j + 1; k < d; ++k) v -= R[size_t(j * d + k)] * R[size_t(j * d + k)];
    if (!(v > 0)) v = 1e-12 * std::max(1.0, mean);  // numerically singular: keep going, barely weighted
    const double r = std::sqrt(v);
    R[size_t(j * d + j)] = r;
    for (int64_t i = 0; i < j; ++i) {
      double a = H(i, j);
      for (int64_t k = j + 1; k < d; ++k) a -= R[size_t(i * d + k)] * R[size_t(j * d + k)];
      R[size_t(i * d + j)] = a / r;
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    U[size_t(j * d + j)] = 1.0 / R[size_t(j * d + j)];
    for (int64_t i = j - 1; i >= 0; --i) {
      double a = 0;
      for (int64_t k = i + 1; k <= j; ++k) a += R[size_t(i * d + k)] * U[size_t(k * d + j)];
      U[size_t(i * d + j)] = -a / R[size_t(i * d + i)];
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    const double sj = s[size_t(j)];
    if (sj == 0) continue;  // full precision: nothing to round, it only absorbs
    const double q = std::clamp(std::nearbyint(w[size_t(j)] / sj), -127.0, 127.0) * sj;
    const double e = (w[size_t(j)] - q) / U[size_t(j * d + j)];
    w[size_t(j)] = q;
    for (int64_t k = j + 1; k < d; ++k) w[size_t(k)] -= e * U[size_t(j * d + k)];
  }
}

RoundedLstmWeights lstm_output_error_rounding(int64_t IN, int64_t H, int64_t HO, const std::vector<float>& w_ih,
                                              const std::vector<float>& w_hh, const std::vector<float>& b_ih,
                                              const RnnRoundingSteps& st) {
  constexpr const char* op = "LSTM output-error rounding";
  const int64_t G = 4 * H, D = IN + HO, n = st.n;
  if (int64_t(w_ih.size()) != G * IN || int64_t(w_hh.size()) != G * HO || (!b_ih.empty() && int64_t(b_ih.size()) != G))
    fail(op, ": expected w_ih [", G, ", ", IN, "], w_hh [", G, ", ", HO, "] and b_ih [", G, "] or none, got ", w_ih.size(),
         ", ", w_hh.size(), " and ", b_ih.size(), " values");
  if (st.d != D || st.rows != G || int64_t(st.z.size()) != n * D || int64_t(st.a.size()) != n * G)
    fail(op, ": expected calibration steps of ", D, " inputs and ", G, " row weights, got ", st.d, " and ", st.rows);
  const kernels::QMatrix qi = kernels::quantize_matrix(op, "weight_ih", w_ih, G, IN),
                         qh = kernels::quantize_matrix(op, "weight_hh", w_hh, G, HO);
  RoundedLstmWeights out;
  out.b_ih = b_ih;
  out.w_ih.resize(w_ih.size()), out.w_hh.resize(w_hh.size());
  // Round to nearest to start with: rows the calibration never weighs keep it.
  for (int64_t r = 0; r < G; ++r) {
    for (int64_t k = 0; k < IN; ++k) out.w_ih[size_t(r * IN + k)] = float(qi.w[size_t(r * IN + k)]) * qi.s_w[size_t(r)];
    for (int64_t k = 0; k < HO; ++k) out.w_hh[size_t(r * HO + k)] = float(qh.w[size_t(r * HO + k)]) * qh.s_w[size_t(r)];
  }
  if (n == 0) return out;
  for (float v : st.z)
    if (!std::isfinite(v)) fail(op, ": expected finite calibration inputs, found ", v);
  for (float v : st.a)
    if (!(std::isfinite(v) && v >= 0)) fail(op, ": expected finite row weights >= 0, found ", v);
  const bool bias = !b_ih.empty();
  const int64_t d = D + (bias ? 1 : 0);
  std::vector<float> zs(size_t(n * d)), hf(size_t(d * d));
  std::vector<double> w(static_cast<size_t>(d)), s(static_cast<size_t>(d)), hess(static_cast<size_t>(d * d));
  std::vector<int64_t> order(static_cast<size_t>(d));  // column of the row's problem -> input index (D: the bias)
  for (int64_t r = 0; r < G; ++r) {
    double total = 0;
    for (int64_t t = 0; t < n; ++t) total += st.a[size_t(t * G + r)];
    if (!(total > 0)) continue;
    // The largest weight of each matrix first: it rounds to its ±127 before any error reaches it,
    // so the row keeps round-to-nearest's scale.
    auto argmax = [](const std::vector<float>& v, int64_t off, int64_t len) {
      int64_t best = 0;
      for (int64_t k = 1; k < len; ++k)
        if (std::fabs(v[size_t(off + k)]) > std::fabs(v[size_t(off + best)])) best = k;
      return best;
    };
    const int64_t mi = argmax(w_ih, r * IN, IN), mh = IN + argmax(w_hh, r * HO, HO);
    int64_t c = 0;
    order[size_t(c++)] = mi, order[size_t(c++)] = mh;
    for (int64_t k = 0; k < D; ++k)
      if (k != mi && k != mh) order[size_t(c++)] = k;
    if (bias) order[size_t(c++)] = D;
    for (int64_t t = 0; t < n; ++t) {
      const float a = std::sqrt(st.a[size_t(t * G + r)]);
      const float* z = &st.z[size_t(t * D)];
      for (int64_t j = 0; j < d; ++j) {
        const int64_t k = order[size_t(j)];
        zs[size_t(t * d + j)] = a * (k < D ? z[k] : 1.0f);
      }
    }
    ops::sgemm(true, false, d, d, n, 1.0f, zs.data(), d, zs.data(), d, 0.0f, hf.data(), d);
    for (size_t k = 0; k < hf.size(); ++k) hess[k] = hf[k];
    double b0 = 0;
    for (int64_t j = 0; j < d; ++j) {
      const int64_t k = order[size_t(j)];
      if (k < IN) w[size_t(j)] = w_ih[size_t(r * IN + k)], s[size_t(j)] = qi.s_w[size_t(r)];
      else if (k < D) w[size_t(j)] = w_hh[size_t(r * HO + k - IN)], s[size_t(j)] = qh.s_w[size_t(r)];
      else w[size_t(j)] = b0 = 0.0, s[size_t(j)] = 0.0;  // the bias's change only
    }
    round_row_by_output_error(w, s, hess);
    for (int64_t j = 0; j < d; ++j) {
      const int64_t k = order[size_t(j)];
      if (k < IN) out.w_ih[size_t(r * IN + k)] = float(w[size_t(j)]);
      else if (k < D) out.w_hh[size_t(r * HO + k - IN)] = float(w[size_t(j)]);
      else out.b_ih[size_t(r)] = float(double(b_ih[size_t(r)]) + (w[size_t(j)] - b0));
    }
  }
  return out;
}

}  // namespace finch::quant
