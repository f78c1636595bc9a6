// The LSTM cell operator: shape checks, the two gate gemms, the fused pass, backward, reference.
//
// Shapes: B batch, IN input features, H hidden, 4H gates in order i, f, g, o (PyTorch's).
// Backward (a = pre-activation, dct the total cell gradient):
//   dct = dc' + dh'·o·(1 − tanh²c')          c' feeds h' through tanh
//   da_i = dct·g·i(1−i)   da_f = dct·c·f(1−f)   da_g = dct·i·(1−g²)   da_o = dh'·tanh c'·o(1−o)
//   dc = dct·f,  dx = da·W_ih,  dh = da·W_hh,  dW_ih = daᵀ·x,  dW_hh = daᵀ·h,  db = Σ_B da
#include "ops/lstm.h"

#include <cmath>

#include "ops/gemm.h"

namespace finch::ops {
namespace {

struct Dims {
  int64_t B, IN, H;
};

void check_same_dtype(const char* what, const Tensor& t, DType dt) {
  if (t.dtype() != dt)
    fail("lstm_cell: expected ", what, " to have dtype ", dtype_name(dt), " like x, got ",
         dtype_name(t.dtype()));
}

void check_shape(const char* what, const Tensor& t, const Shape& want) {
  if (t.shape() != want)
    fail("lstm_cell: expected ", what, " of shape ", shape_str(want), ", got ",
         shape_str(t.shape()));
}

Dims check_inputs(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                  const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  if (!x.defined() || !h.defined() || !c.defined() || !w_ih.defined() || !w_hh.defined())
    fail("lstm_cell: expected x, h, c, w_ih and w_hh to be defined tensors");
  if (x.dim() != 2) fail("lstm_cell: expected x of shape [B, IN], got ", shape_str(x.shape()));
  if (h.dim() != 2) fail("lstm_cell: expected h of shape [B, H], got ", shape_str(h.shape()));
  const DType dt = x.dtype();
  if (dt != DType::f32 && dt != DType::f64)
    fail("lstm_cell: expected F32 or F64 tensors, got x of dtype ", dtype_name(dt));
  const Dims d{x.size(0), x.size(1), h.size(1)};
  check_shape("h", h, {d.B, d.H});
  check_shape("c", c, {d.B, d.H});
  check_shape("w_ih", w_ih, {4 * d.H, d.IN});
  check_shape("w_hh", w_hh, {4 * d.H, d.H});
  check_same_dtype("h", h, dt);
  check_same_dtype("c", c, dt);
  check_same_dtype("w_ih", w_ih, dt);
  check_same_dtype("w_hh", w_hh, dt);
  if (b_ih.defined()) check_shape("b_ih", b_ih, {4 * d.H}), check_same_dtype("b_ih", b_ih, dt);
  if (b_hh.defined()) check_shape("b_hh", b_hh, {4 * d.H}), check_same_dtype("b_hh", b_hh, dt);
  return d;
}

template <typename T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if constexpr (std::is_same_v<T, float>)
    sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    dgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

template <typename T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

// Scalar fused pass (the F64 path and the reference): same contract as lstm_gates_forward_f32.
template <typename T>
void gates_forward_scalar(int64_t B, int64_t H, T* gates, const T* c, T* h_new, T* c_new,
                          T* tanh_c) {
  for (int64_t b = 0; b < B; ++b) {
    T* g = gates + b * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      const T i = sigmoid(g[j]), f = sigmoid(g[H + j]), gg = std::tanh(g[2 * H + j]),
              o = sigmoid(g[3 * H + j]);
      g[j] = i, g[H + j] = f, g[2 * H + j] = gg, g[3 * H + j] = o;
      const int64_t r = b * H + j;
      c_new[r] = f * c[r] + i * gg;
      tanh_c[r] = std::tanh(c_new[r]);
      h_new[r] = o * tanh_c[r];
    }
  }
}

template <typename T>
void gates_backward_scalar(int64_t B, int64_t H, const T* dh_new, const T* dc_new, const T* gates,
                           const T* c, const T* tanh_c, T* dgates, T* dc) {
  for (int64_t b = 0; b < B; ++b) {
    const T* g = gates + b * 4 * H;
    T* dg = dgates + b * 4 * H;
    for (int64_t j = 0; j < H; ++j) {
      const int64_t r = b * H + j;
      const T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j], t = tanh_c[r];
      const T dct = dc_new[r] + dh_new[r] * o * (T(1) - t * t);
      dg[j] = dct * gg * i * (T(1) - i);
      dg[H + j] = dct * c[r] * f * (T(1) - f);
      dg[2 * H + j] = dct * i * (T(1) - gg * gg);
      dg[3 * H + j] = dh_new[r] * t * o * (T(1) - o);
      if (dc) dc[r] = dct * f;
    }
  }
}

// gates[b, :] = b_ih + b_hh (or 0), the starting value the two gemms accumulate onto.
template <typename T>
void fill_bias(Tensor& gates, const Tensor& b_ih, const Tensor& b_hh) {
  const int64_t B = gates.size(0), G = gates.size(1);
  T* g = gates.data<T>();
  std::vector<T> bias(size_t(G), T(0));
  if (b_ih.defined()) {
    const T* p = b_ih.data<T>();
    for (int64_t j = 0; j < G; ++j) bias[size_t(j)] += p[j];
  }
  if (b_hh.defined()) {
    const T* p = b_hh.data<T>();
    for (int64_t j = 0; j < G; ++j) bias[size_t(j)] += p[j];
  }
  for (int64_t b = 0; b < B; ++b) std::copy(bias.begin(), bias.end(), g + b * G);
}

template <typename T>
LstmCellOutput forward_impl(const Dims& d, const Tensor& x, const Tensor& h, const Tensor& c,
                            const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                            const Tensor& b_hh, bool reference) {
  const DType dt = dtype_v<T>;
  const Tensor xc = x.contiguous(), hc = h.contiguous(), cc = c.contiguous();
  const Tensor wi = w_ih.contiguous(), wh = w_hh.contiguous();
  const Tensor bi = b_ih.defined() ? b_ih.contiguous() : Tensor();
  const Tensor bh = b_hh.defined() ? b_hh.contiguous() : Tensor();
  LstmCellOutput out{empty({d.B, d.H}, dt), empty({d.B, d.H}, dt), empty({d.B, 4 * d.H}, dt),
                     empty({d.B, d.H}, dt)};
  fill_bias<T>(out.gates, bi, bh);
  const int64_t G = 4 * d.H;
  T* g = out.gates.data<T>();
  auto mm = reference ? &gemm_reference<T> : &gemm<T>;
  // gates += x·W_ihᵀ; gates += h·W_hhᵀ  (beta = 1 accumulates onto the bias rows)
  if (d.IN > 0) mm(false, true, d.B, G, d.IN, T(1), xc.data<T>(), d.IN, wi.data<T>(), d.IN, T(1), g, G);
  if (d.H > 0) mm(false, true, d.B, G, d.H, T(1), hc.data<T>(), d.H, wh.data<T>(), d.H, T(1), g, G);
  if constexpr (std::is_same_v<T, float>) {
    if (!reference) {
      lstm_gates_forward_f32(d.B, d.H, g, cc.data<float>(), out.h.data<float>(),
                             out.c.data<float>(), out.tanh_c.data<float>());
      return out;
    }
  }
  gates_forward_scalar<T>(d.B, d.H, g, cc.data<T>(), out.h.data<T>(), out.c.data<T>(),
                          out.tanh_c.data<T>());
  return out;
}

template <typename T>
LstmCellGrads backward_impl(const Tensor& dh_new, const Tensor& dc_new, const Tensor& x,
                            const Tensor& h, const Tensor& c, const Tensor& w_ih,
                            const Tensor& w_hh, const Tensor& gates, const Tensor& tanh_c,
                            const LstmCellNeeds& needs, bool reference) {
  const DType dt = dtype_v<T>;
  const int64_t B = x.size(0), H = h.size(1), G = 4 * H;
  const Tensor dhn = dh_new.contiguous(), dcn = dc_new.contiguous(), cc = c.contiguous();
  const Tensor gs = gates.contiguous(), tc = tanh_c.contiguous();
  Tensor dgates = empty({B, G}, dt);
  LstmCellGrads r;
  if (needs.c) r.dc = empty({B, H}, dt);
  T* dg = dgates.data<T>();
  T* dcp = needs.c ? r.dc.data<T>() : nullptr;
  bool done = false;
  if constexpr (std::is_same_v<T, float>) {
    if (!reference) {
      lstm_gates_backward_f32(B, H, dhn.data<float>(), dcn.data<float>(), gs.data<float>(),
                              cc.data<float>(), tc.data<float>(), dg, dcp);
      done = true;
    }
  }
  if (!done)
    gates_backward_scalar<T>(B, H, dhn.data<T>(), dcn.data<T>(), gs.data<T>(), cc.data<T>(),
                             tc.data<T>(), dg, dcp);

  auto mm = reference ? &gemm_reference<T> : &gemm<T>;
  // dx [B, IN] = da [B, 4H] · W_ih [4H, IN];  dW_ih [4H, IN] = daᵀ · x [B, IN]
  auto input_grads = [&](const Tensor& in, const Tensor& w, bool need_in, bool need_w,
                         Tensor& din, Tensor& dw) {
    const int64_t K = in.size(1);
    if (need_in) {
      din = empty({B, K}, dt);
      if (K > 0) {
        const Tensor wc = w.contiguous();
        if (G > 0) mm(false, false, B, K, G, T(1), dg, G, wc.data<T>(), K, T(0), din.data<T>(), K);
        else din.zero_();
      }
    }
    if (need_w) {
      dw = empty({G, K}, dt);
      if (G > 0 && K > 0) {
        const Tensor ic = in.contiguous();
        if (B > 0) mm(true, false, G, K, B, T(1), dg, G, ic.data<T>(), K, T(0), dw.data<T>(), K);
        else dw.zero_();
      }
    }
  };
  input_grads(x, w_ih, needs.x, needs.w_ih, r.dx, r.dw_ih);
  input_grads(h, w_hh, needs.h, needs.w_hh, r.dh, r.dw_hh);
  if (needs.b_ih || needs.b_hh) {
    // Both biases enter the same sum, so they share one gradient: the column sums of da.
    Tensor db = zeros({G}, dt);
    T* p = db.data<T>();
    for (int64_t b = 0; b < B; ++b)
      for (int64_t j = 0; j < G; ++j) p[j] += dg[b * G + j];
    if (needs.b_ih) r.db_ih = db;
    if (needs.b_hh) r.db_hh = needs.b_ih ? db.clone() : db;
  }
  return r;
}

void check_backward_inputs(const Tensor& dh_new, const Tensor& dc_new, const Tensor& x,
                           const Tensor& h, const Tensor& c, const Tensor& w_ih,
                           const Tensor& w_hh, const Tensor& gates, const Tensor& tanh_c) {
  const Dims d = check_inputs(x, h, c, w_ih, w_hh, Tensor(), Tensor());
  check_shape("dh'", dh_new, {d.B, d.H});
  check_shape("dc'", dc_new, {d.B, d.H});
  check_shape("the saved gates", gates, {d.B, 4 * d.H});
  check_shape("the saved tanh(c')", tanh_c, {d.B, d.H});
  for (const Tensor* t : {&dh_new, &dc_new, &gates, &tanh_c}) check_same_dtype("gradients", *t, x.dtype());
}

}  // namespace

LstmCellOutput lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                         const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh) {
  const Dims d = check_inputs(x, h, c, w_ih, w_hh, b_ih, b_hh);
  if (x.dtype() == DType::f32) return forward_impl<float>(d, x, h, c, w_ih, w_hh, b_ih, b_hh, false);
  return forward_impl<double>(d, x, h, c, w_ih, w_hh, b_ih, b_hh, false);
}

LstmCellOutput lstm_cell_reference(const Tensor& x, const Tensor& h, const Tensor& c,
                                   const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                   const Tensor& b_hh) {
  const Dims d = check_inputs(x, h, c, w_ih, w_hh, b_ih, b_hh);
  if (x.dtype() == DType::f32) return forward_impl<float>(d, x, h, c, w_ih, w_hh, b_ih, b_hh, true);
  return forward_impl<double>(d, x, h, c, w_ih, w_hh, b_ih, b_hh, true);
}

LstmCellGrads lstm_cell_backward(const Tensor& dh_new, const Tensor& dc_new, const Tensor& x,
                                 const Tensor& h, const Tensor& c, const Tensor& w_ih,
                                 const Tensor& w_hh, const Tensor& gates, const Tensor& tanh_c,
                                 const LstmCellNeeds& needs) {
  check_backward_inputs(dh_new, dc_new, x, h, c, w_ih, w_hh, gates, tanh_c);
  if (x.dtype() == DType::f32)
    return backward_impl<float>(dh_new, dc_new, x, h, c, w_ih, w_hh, gates, tanh_c, needs, false);
  return backward_impl<double>(dh_new, dc_new, x, h, c, w_ih, w_hh, gates, tanh_c, needs, false);
}

LstmCellGrads lstm_cell_backward_reference(const Tensor& dh_new, const Tensor& dc_new,
                                           const Tensor& x, const Tensor& h, const Tensor& c,
                                           const Tensor& w_ih, const Tensor& w_hh,
                                           const Tensor& gates, const Tensor& tanh_c,
                                           const LstmCellNeeds& needs) {
  check_backward_inputs(dh_new, dc_new, x, h, c, w_ih, w_hh, gates, tanh_c);
  if (x.dtype() == DType::f32)
    return backward_impl<float>(dh_new, dc_new, x, h, c, w_ih, w_hh, gates, tanh_c, needs, true);
  return backward_impl<double>(dh_new, dc_new, x, h, c, w_ih, w_hh, gates, tanh_c, needs, true);
}

void lstm_gates_forward_f64(int64_t B, int64_t H, double* gates, const double* c, double* h_new,
                            double* c_new, double* tanh_c) {
  gates_forward_scalar<double>(B, H, gates, c, h_new, c_new, tanh_c);
}
void lstm_gates_backward_f64(int64_t B, int64_t H, const double* dh_new, const double* dc_new,
                             const double* gates, const double* c, const double* tanh_c,
                             double* dgates, double* dc) {
  gates_backward_scalar<double>(B, H, dh_new, dc_new, gates, c, tanh_c, dgates, dc);
}

}  // namespace finch::ops
