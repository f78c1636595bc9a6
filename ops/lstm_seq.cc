// One LSTM layer-direction over a whole sequence (torch.nn.LSTM, gates i, f, g, o, optional
// projection h = W_hr·(o ⊙ tanh c)), forward and BPTT backward. See ops/rnn_seq.h.
//
// Backward per step (a = gate pre-activations, dh the gradient reaching h_t from y_t and from
// step t+1, dc the one reaching c_t): with a projection dh_raw = dh·W_hr, then ops/lstm.h's fused
// gate backward gives da and dc_{t-1}, and dh_{t-1} = da·W_hh. The weight gradients are one GEMM
// each over all T·B rows at the end: dW_hh = Σ_t daᵀ·h_{t-1}, dW_ih = Σ_t daᵀ·x_t,
// dW_hr = Σ_t dhᵀ·h_raw.
#include <cmath>
#include <cstring>
#include <memory>
#include <type_traits>

#include "framework/parallel.h"
#include "ops/gemm.h"
#include "ops/lstm.h"
#include "ops/rnn_seq.h"

namespace finch::ops {
namespace {

using rnn_detail::SeqDims;

// One name for the F32 (Highway) and F64 (scalar, gradcheck) gate passes of ops/lstm.h.
void gates_forward(int64_t B, int64_t H, double* gates, const double* c, double* h_new,
                   double* c_new, double* tanh_c) {
  lstm_gates_forward_f64(B, H, gates, c, h_new, c_new, tanh_c);
}
void gates_forward(int64_t B, int64_t H, float* gates, const float* c, float* h_new, float* c_new,
                   float* tanh_c) {
  lstm_gates_forward_f32(B, H, gates, c, h_new, c_new, tanh_c);
}
// dc_new and dc may be the same buffer: each element is read before it is written.
void gates_backward(int64_t B, int64_t H, const double* dh_new, const double* dc_new,
                    const double* gates, const double* c, const double* tanh_c, double* dgates,
                    double* dc) {
  lstm_gates_backward_f64(B, H, dh_new, dc_new, gates, c, tanh_c, dgates, dc);
}
void gates_backward(int64_t B, int64_t H, const float* dh_new, const float* dc_new,
                    const float* gates, const float* c, const float* tanh_c, float* dgates,
                    float* dc) {
  lstm_gates_backward_f32(B, H, dh_new, dc_new, gates, c, tanh_c, dgates, dc);
}

template <typename T>
RnnSeqOutput forward_impl(const SeqDims& d, const Tensor& x, const Tensor& h0, const Tensor& c0,
                          const RnnWeights& w, const Tensor& lengths, bool reverse) {
  const DType dt = x.dtype();
  const int64_t T_ = d.T, B = d.B, H = d.H, P = d.P, G = d.G;
  const bool proj = w.w_hr.defined();
  RnnSeqOutput out;
  RnnSaved& s = out.saved;
  s.order = seq_order("lstm", lengths, T_, B);
  auto buf = [&](const Shape& shape) { return rnn_detail::step_buffer(s.order, shape, dt); };
  s.x = rnn_detail::sorted_input(x, s.order, lengths.defined());
  s.gates = rnn_detail::input_projection(s.x, w, true);
  s.h_prev = buf({T_, B, P});
  s.c_prev = buf({T_, B, H});
  s.tanh_c = buf({T_, B, H});
  if (proj) s.h_raw = buf({T_, B, H});
  Tensor y = buf({T_, B, P});
  Tensor hs = rnn_detail::sorted_state(h0, s.order, {B, P}, dt);
  Tensor cs = rnn_detail::sorted_state(c0, s.order, {B, H}, dt);
  const Tensor whh = w.w_hh.contiguous();
  const Tensor whr = proj ? w.w_hr.contiguous() : Tensor();
  // F32: W_hh packed once for the per-step product (rnn_seq_hwy.cc); F64 keeps BLAS.
  std::shared_ptr<const PackedRecurrent> packed = w.w_hh_packed;
  if constexpr (std::is_same_v<T, float>) {
    if (!packed) packed = std::make_shared<const PackedRecurrent>(pack_recurrent(whh));
    if (packed->G != G || packed->K != P)
      fail("lstm: the packed W_hh is [", packed->G, ", ", packed->K, "]; expected [", G, ", ", P, "]");
  }
  // Rows never interact, so each thread runs the whole recurrence for its own rows: no
  // synchronization per step (single-threaded GEMMs inside the pool).
  parallel_for(0, B, rnn_detail::kRowGrain, [&](int64_t r0, int64_t r1) {
    T* hsp = hs.data<T>() + r0 * P;
    T* csp = cs.data<T>() + r0 * H;
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? T_ - 1 - k : k;
      const int64_t n = rnn_detail::rows_active(s.order, t, r0, r1);
      if (n == 0) continue;  // every sample of this chunk is shorter than t + 1
      const int64_t row = t * B + r0;
      T* hp = s.h_prev.data<T>() + row * P;
      T* cp = s.c_prev.data<T>() + row * H;
      T* g = s.gates.data<T>() + row * G;
      T* yt = y.data<T>() + row * P;
      std::memcpy(hp, hsp, size_t(n * P) * sizeof(T));
      std::memcpy(cp, csp, size_t(n * H) * sizeof(T));
      if constexpr (std::is_same_v<T, float>) rnn_detail::recurrent_gemm(*packed, n, hp, P, g, G);
      else gemm_t<T>(false, true, n, G, P, hp, P, whh.data<T>(), P, T(1), g, G);
      T* hraw = proj ? s.h_raw.data<T>() + row * H : yt;
      gates_forward(n, H, g, cp, hraw, csp, s.tanh_c.data<T>() + row * H);
      if (proj) gemm_t<T>(false, true, n, P, H, hraw, H, whr.data<T>(), H, T(0), yt, P);
      std::memcpy(hsp, yt, size_t(n * P) * sizeof(T));
    }
  });
  out.y = rnn_detail::permute_batch(y, s.order, true);
  out.h_n = rnn_detail::permute_rows(hs, s.order, true);
  out.c_n = rnn_detail::permute_rows(cs, s.order, true);
  return out;
}

template <typename T>
RnnSeqGrads backward_impl(const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n,
                          const RnnWeights& w, const RnnSaved& s, bool reverse,
                          const RnnSeqNeeds& needs) {
  const DType dt = s.x.dtype();
  const int64_t T_ = s.x.size(0), B = s.x.size(1), G = s.gates.size(2), H = G / 4;
  const int64_t P = s.h_prev.size(2);
  const bool proj = w.w_hr.defined();
  const Tensor dys = dy.defined() ? rnn_detail::permute_batch(dy, s.order, false) : Tensor();
  Tensor dhs = rnn_detail::sorted_state(dh_n, s.order, {B, P}, dt);
  Tensor dcs = rnn_detail::sorted_state(dc_n, s.order, {B, H}, dt);
  auto buf = [&](const Shape& shape) { return rnn_detail::step_buffer(s.order, shape, dt); };
  Tensor dgates = buf({T_, B, G});
  Tensor dh_out = proj ? buf({T_, B, P}) : Tensor();
  Tensor dh_cur = empty({B, P}, dt), dh_raw = proj ? empty({B, H}, dt) : Tensor();
  const Tensor whh = w.w_hh.contiguous();
  const Tensor whr = proj ? w.w_hr.contiguous() : Tensor();
  parallel_for(0, B, rnn_detail::kRowGrain, [&](int64_t r0, int64_t r1) {
    T* dhsp = dhs.data<T>() + r0 * P;
    T* dcsp = dcs.data<T>() + r0 * H;
    T* dcur = dh_cur.data<T>() + r0 * P;
    T* draw = proj ? dh_raw.data<T>() + r0 * H : nullptr;
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? k : T_ - 1 - k;
      const int64_t n = rnn_detail::rows_active(s.order, t, r0, r1);
      if (n == 0) continue;
      const int64_t row = t * B + r0;
      // The gradient reaching this step's output h: from y_t and from step t+1 (in run order).
      if (dys.defined()) {
        const T* dyt = dys.data<T>() + row * P;
        for (int64_t i = 0; i < n * P; ++i) dcur[i] = dhsp[i] + dyt[i];
      } else {
        std::memcpy(dcur, dhsp, size_t(n * P) * sizeof(T));
      }
      const T* dh_gates = dcur;
      if (proj) {
        std::memcpy(dh_out.data<T>() + row * P, dcur, size_t(n * P) * sizeof(T));
        gemm_t<T>(false, false, n, H, P, dcur, P, whr.data<T>(), H, T(0), draw, H);
        dh_gates = draw;
      }
      T* dg = dgates.data<T>() + row * G;
      gates_backward(n, H, dh_gates, dcsp, s.gates.data<T>() + row * G,
                     s.c_prev.data<T>() + row * H, s.tanh_c.data<T>() + row * H, dg, dcsp);
      gemm_t<T>(false, false, n, P, G, dg, G, whh.data<T>(), P, T(0), dhsp, P);
    }
  });
  RnnSeqGrads r;
  if (needs.h0) r.dh0 = rnn_detail::permute_rows(dhs, s.order, true);
  if (needs.c0) r.dc0 = rnn_detail::permute_rows(dcs, s.order, true);
  const int64_t R = T_ * B;
  if (needs.w_hh) {
    r.dw_hh = zeros({G, P}, dt);
    rnn_detail::pool_gemm<T>(true, false, G, P, R, dgates.data<T>(), G, s.h_prev.data<T>(), P, T(0),
              r.dw_hh.data<T>(), P);
  }
  if (proj && needs.w_hr) {
    r.dw_hr = zeros({P, H}, dt);
    rnn_detail::pool_gemm<T>(true, false, P, H, R, dh_out.data<T>(), P, s.h_raw.data<T>(), H, T(0),
              r.dw_hr.data<T>(), H);
  }
  // b_ih and b_hh enter the same sum, so both get the column sums of da.
  RnnSeqNeeds in_needs = needs;
  in_needs.b_ih = needs.b_ih || needs.b_hh;
  rnn_detail::input_grads(dgates, s.x, w.w_ih, in_needs, s.order, r);
  if (needs.b_hh) r.db_hh = needs.b_ih ? r.db_ih.clone() : r.db_ih;
  if (!needs.b_ih) r.db_ih = Tensor();
  return r;
}

}  // namespace

RnnSeqOutput lstm_seq(const Tensor& x, const Tensor& h0, const Tensor& c0, const RnnWeights& w,
                      const Tensor& lengths, bool reverse) {
  const SeqDims d = rnn_detail::check_seq("lstm", x, h0, c0, w, 4);
  if (x.dtype() == DType::f32) return forward_impl<float>(d, x, h0, c0, w, lengths, reverse);
  return forward_impl<double>(d, x, h0, c0, w, lengths, reverse);
}

RnnSeqGrads lstm_seq_backward(const Tensor& dy, const Tensor& dh_n, const Tensor& dc_n,
                              const RnnWeights& w, const RnnSaved& saved, bool reverse,
                              const RnnSeqNeeds& needs) {
  const int64_t T_ = saved.x.size(0), B = saved.x.size(1), H = saved.gates.size(2) / 4;
  const int64_t P = saved.h_prev.size(2);
  const DType dt = saved.x.dtype();
  auto check = [&](const char* what, const Tensor& t, const Shape& want) {
    if (t.defined() && (t.shape() != want || t.dtype() != dt))
      fail("lstm backward: expected ", what, " of shape ", shape_str(want), " and dtype ",
           dtype_name(dt), ", found ", shape_str(t.shape()), " ", dtype_name(t.dtype()));
  };
  check("dy", dy, {T_, B, P});
  check("dh_n", dh_n, {B, P});
  check("dc_n", dc_n, {B, H});
  if (dt == DType::f32) return backward_impl<float>(dy, dh_n, dc_n, w, saved, reverse, needs);
  return backward_impl<double>(dy, dh_n, dc_n, w, saved, reverse, needs);
}

}  // namespace finch::ops
