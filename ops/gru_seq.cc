// One GRU layer-direction over a whole sequence (torch.nn.GRU, gates r, z, n), forward and BPTT
// backward. See ops/rnn_seq.h for the layout and ops/gru.h for the gate equations.
//
// Unlike the LSTM, the hidden projection cannot be folded into the input one (r multiplies only
// W_hn·h + b_hn), so each step keeps gh = h·W_hhᵀ + b_hh in its own buffer, and backward produces
// two gate gradients: dgi for W_ih / b_ih / x and dgh for W_hh / b_hh / h.
#include <cstring>
#include <memory>
#include <type_traits>

#include "framework/parallel.h"
#include "ops/gemm.h"
#include "ops/gru.h"
#include "ops/rnn_seq.h"

namespace finch::ops {
namespace {

using rnn_detail::SeqDims;

void gates_forward(int64_t B, int64_t H, float* gi, const float* gh, const float* h, float* hn) {
  gru_gates_forward_f32(B, H, gi, gh, h, hn);
}
void gates_forward(int64_t B, int64_t H, double* gi, const double* gh, const double* h,
                   double* hn) {
  gru_gates_forward_reference(B, H, gi, gh, h, hn);
}
void gates_backward(int64_t B, int64_t H, const float* dhn, const float* g, const float* gh,
                    const float* h, float* dgi, float* dgh, float* dh) {
  gru_gates_backward_f32(B, H, dhn, g, gh, h, dgi, dgh, dh);
}
void gates_backward(int64_t B, int64_t H, const double* dhn, const double* g, const double* gh,
                    const double* h, double* dgi, double* dgh, double* dh) {
  gru_gates_backward_reference(B, H, dhn, g, gh, h, dgi, dgh, dh);
}

template <typename T>
RnnSeqOutput forward_impl(const SeqDims& d, const Tensor& x, const Tensor& h0, const RnnWeights& w,
                          const Tensor& lengths, bool reverse) {
  const DType dt = x.dtype();
  const int64_t T_ = d.T, B = d.B, H = d.H, G = d.G;
  RnnSeqOutput out;
  RnnSaved& s = out.saved;
  s.order = seq_order("gru", lengths, T_, B);
  auto buf = [&](const Shape& shape) { return rnn_detail::step_buffer(s.order, shape, dt); };
  s.x = rnn_detail::sorted_input(x, s.order, lengths.defined());
  s.gates = rnn_detail::input_projection(s.x, w, false);
  s.h_prev = buf({T_, B, H});
  s.gh = buf({T_, B, G});
  Tensor y = buf({T_, B, H});
  Tensor hs = rnn_detail::sorted_state(h0, s.order, {B, H}, dt);
  const Tensor whh = w.w_hh.contiguous();
  const std::vector<T> bhh = w.b_hh.defined() ? w.b_hh.to_vector<T>() : std::vector<T>(size_t(G), T(0));
  // F32: W_hh packed once for the per-step product (rnn_seq_hwy.cc); F64 keeps BLAS.
  std::shared_ptr<const PackedRecurrent> packed = w.w_hh_packed;
  if constexpr (std::is_same_v<T, float>) {
    if (!packed) packed = std::make_shared<const PackedRecurrent>(pack_recurrent(whh));
    if (packed->G != G || packed->K != H)
      fail("gru: the packed W_hh is [", packed->G, ", ", packed->K, "]; expected [", G, ", ", H, "]");
  }
  // Rows never interact: each thread runs the whole recurrence for its own rows.
  parallel_for(0, B, rnn_detail::kRowGrain, [&](int64_t r0, int64_t r1) {
    T* hsp = hs.data<T>() + r0 * H;
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? T_ - 1 - k : k;
      const int64_t n = rnn_detail::rows_active(s.order, t, r0, r1);
      if (n == 0) continue;  // every sample of this chunk is shorter than t + 1
      const int64_t row = t * B + r0;
      T* hp = s.h_prev.data<T>() + row * H;
      T* gh = s.gh.data<T>() + row * G;
      T* yt = y.data<T>() + row * H;
      std::memcpy(hp, hsp, size_t(n * H) * sizeof(T));
      for (int64_t b = 0; b < n; ++b) std::memcpy(gh + b * G, bhh.data(), size_t(G) * sizeof(T));
      if constexpr (std::is_same_v<T, float>) rnn_detail::recurrent_gemm(*packed, n, hp, H, gh, G);
      else gemm_t<T>(false, true, n, G, H, hp, H, whh.data<T>(), H, T(1), gh, G);
      gates_forward(n, H, s.gates.data<T>() + row * G, gh, hp, yt);
      std::memcpy(hsp, yt, size_t(n * H) * sizeof(T));
    }
  });
  out.y = rnn_detail::permute_batch(y, s.order, true);
  out.h_n = rnn_detail::permute_rows(hs, s.order, true);
  return out;
}

template <typename T>
RnnSeqGrads backward_impl(const Tensor& dy, const Tensor& dh_n, const RnnWeights& w,
                          const RnnSaved& s, bool reverse, const RnnSeqNeeds& needs) {
  const DType dt = s.x.dtype();
  const int64_t T_ = s.x.size(0), B = s.x.size(1), G = s.gates.size(2), H = G / 3;
  const Tensor dys = dy.defined() ? rnn_detail::permute_batch(dy, s.order, false) : Tensor();
  Tensor dhs = rnn_detail::sorted_state(dh_n, s.order, {B, H}, dt);
  auto buf = [&](const Shape& shape) { return rnn_detail::step_buffer(s.order, shape, dt); };
  Tensor dgi = buf({T_, B, G}), dgh = buf({T_, B, G});
  Tensor dh_cur = empty({B, H}, dt);
  const Tensor whh = w.w_hh.contiguous();
  parallel_for(0, B, rnn_detail::kRowGrain, [&](int64_t r0, int64_t r1) {
    T* dhsp = dhs.data<T>() + r0 * H;
    T* dcur = dh_cur.data<T>() + r0 * H;
    for (int64_t k = 0; k < T_; ++k) {
      const int64_t t = reverse ? k : T_ - 1 - k;
      const int64_t n = rnn_detail::rows_active(s.order, t, r0, r1);
      if (n == 0) continue;
      const int64_t row = t * B + r0;
      if (dys.defined()) {
        const T* dyt = dys.data<T>() + row * H;
        for (int64_t i = 0; i < n * H; ++i) dcur[i] = dhsp[i] + dyt[i];
      } else {
        std::memcpy(dcur, dhsp, size_t(n * H) * sizeof(T));
      }
      T* dghp = dgh.data<T>() + row * G;
      // dh_{t-1} = dh'·z (direct) + dgh·W_hh
      gates_backward(n, H, dcur, s.gates.data<T>() + row * G, s.gh.data<T>() + row * G,
                     s.h_prev.data<T>() + row * H, dgi.data<T>() + row * G, dghp, dhsp);
      gemm_t<T>(false, false, n, H, G, dghp, G, whh.data<T>(), H, T(1), dhsp, H);
    }
  });
  RnnSeqGrads r;
  if (needs.h0) r.dh0 = rnn_detail::permute_rows(dhs, s.order, true);
  const int64_t R = T_ * B;
  if (needs.w_hh) {
    r.dw_hh = zeros({G, H}, dt);
    rnn_detail::pool_gemm<T>(true, false, G, H, R, dgh.data<T>(), G, s.h_prev.data<T>(), H, T(0),
              r.dw_hh.data<T>(), H);
  }
  if (needs.b_hh) r.db_hh = rnn_detail::column_sums(dgh.view({R, G}));
  rnn_detail::input_grads(dgi, s.x, w.w_ih, needs, s.order, r);
  return r;
}

}  // namespace

RnnSeqOutput gru_seq(const Tensor& x, const Tensor& h0, const RnnWeights& w,
                     const Tensor& lengths, bool reverse) {
  if (w.w_hr.defined()) fail("gru: a GRU has no projection (w_hr must be undefined)");
  const SeqDims d = rnn_detail::check_seq("gru", x, h0, Tensor(), w, 3);
  if (x.dtype() == DType::f32) return forward_impl<float>(d, x, h0, w, lengths, reverse);
  return forward_impl<double>(d, x, h0, w, lengths, reverse);
}

RnnSeqGrads gru_seq_backward(const Tensor& dy, const Tensor& dh_n, const RnnWeights& w,
                             const RnnSaved& saved, bool reverse, const RnnSeqNeeds& needs) {
  const int64_t T_ = saved.x.size(0), B = saved.x.size(1), H = saved.gates.size(2) / 3;
  const DType dt = saved.x.dtype();
  auto check = [&](const char* what, const Tensor& t, const Shape& want) {
    if (t.defined() && (t.shape() != want || t.dtype() != dt))
      fail("gru backward: expected ", what, " of shape ", shape_str(want), " and dtype ",
           dtype_name(dt), ", found ", shape_str(t.shape()), " ", dtype_name(t.dtype()));
  };
  check("dy", dy, {T_, B, H});
  check("dh_n", dh_n, {B, H});
  if (dt == DType::f32) return backward_impl<float>(dy, dh_n, w, saved, reverse, needs);
  return backward_impl<double>(dy, dh_n, w, saved, reverse, needs);
}

}  // namespace finch::ops
