// reference::dq_lstm_step (reference.h): the dynamic int8 LSTM step from the scalar dq_linear
// and the one f32 gate pass, so every target's QDynamicLstm is checked against plain loops.
#include "framework/error.h"
#include "kernels/reference.h"
#include "ops/lstm.h"

namespace finch::quant::reference {

DqLstmStep dq_lstm_step(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                        const std::vector<float>& s_ih, const Tensor& bias, const Tensor& w_hh,
                        const std::vector<float>& s_hh, const Tensor& w_hr, const std::vector<float>& s_hr) {
  const int64_t G = w_ih.size(0), H = G / 4;
  if (G % 4 != 0 || c.numel() != H)
    fail("dq_lstm_step: expected w_ih [4H, IN] and c [H], got ", shape_str(w_ih.shape()), " and ",
         shape_str(c.shape()));
  const Tensor gx = dq_linear(x.reshape({1, x.numel()}), w_ih, s_ih, bias, "none");
  const Tensor gh = dq_linear(h.reshape({1, h.numel()}), w_hh, s_hh, Tensor(), "none");
  const auto nG = static_cast<size_t>(G), nH = static_cast<size_t>(H);
  std::vector<float> g(nG), m(nH), c_new(nH), tanh_c(nH);
  for (int64_t r = 0; r < G; ++r) g[size_t(r)] = gx.data<float>()[r] + gh.data<float>()[r];
  const std::vector<float> cv = c.contiguous().to_vector<float>();
  ops::lstm_gates_forward_f32(1, H, g.data(), cv.data(), m.data(), c_new.data(), tanh_c.data());
  DqLstmStep out;
  out.c = from_vector(c_new, {H});
  out.h = w_hr.defined() ? dq_linear(from_vector(m, {1, H}), w_hr, s_hr, Tensor(), "none").reshape({w_hr.size(0)})
                         : from_vector(m, {H});
  return out;
}

}  // namespace finch::quant::reference
