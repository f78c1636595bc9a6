// Differentiable recurrent layers: one LSTM or GRU layer-direction over a whole sequence as ONE
// tape node, whose backward runs BPTT inside ops/rnn_seq.h (a tape of T × several nodes per
// layer costs more in bookkeeping than the step's arithmetic at typical sizes).
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/rnn_seq.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

namespace {
Tensor det(const Tensor& t) { return t.defined() ? t.detach() : Tensor(); }

ops::RnnWeights detached(const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                         const Tensor& b_hh, const Tensor& w_hr) {
  return {det(w_ih), det(w_hh), det(b_ih), det(b_hh), det(w_hr)};
}
}  // namespace

RnnLayerOutput lstm_layer(const Tensor& x, const Tensor& h0, const Tensor& c0,
                          const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                          const Tensor& b_hh, const Tensor& w_hr, const Tensor& lengths,
                          bool reverse) {
  const bool rec = autograd::should_record({x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr});
  NoGradGuard ng;
  const ops::RnnWeights w = detached(w_ih, w_hh, b_ih, b_hh, w_hr);
  ops::RnnSeqOutput r = ops::lstm_seq(det(x), det(h0), det(c0), w, lengths, reverse);
  if (rec) {
    r.saved.x = r.saved.x.detach();
    autograd::record(
        "lstm_sequence", {x, h0, c0, w_ih, w_hh, b_ih, b_hh, w_hr}, {r.y, r.h_n, r.c_n},
        [w, saved = std::move(r.saved), reverse](const Grads& g, const Needs& needs) {
          ops::RnnSeqNeeds n{needs[0], needs[1], needs[2], needs[3],
                             needs[4], needs[5], needs[6], needs[7]};
          ops::RnnSeqGrads d = ops::lstm_seq_backward(g[0], g[1], g[2], w, saved, reverse, n);
          return Grads{d.dx, d.dh0, d.dc0, d.dw_ih, d.dw_hh, d.db_ih, d.db_hh, d.dw_hr};
        });
  }
  return {r.y, r.h_n, r.c_n};
}

RnnLayerOutput gru_layer(const Tensor& x, const Tensor& h0, const Tensor& w_ih,
                         const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                         const Tensor& lengths, bool reverse) {
  const bool rec = autograd::should_record({x, h0, w_ih, w_hh, b_ih, b_hh});
  NoGradGuard ng;
  const ops::RnnWeights w = detached(w_ih, w_hh, b_ih, b_hh, Tensor());
  ops::RnnSeqOutput r = ops::gru_seq(det(x), det(h0), w, lengths, reverse);
  if (rec) {
    r.saved.x = r.saved.x.detach();
    autograd::record(
        "gru_sequence", {x, h0, w_ih, w_hh, b_ih, b_hh}, {r.y, r.h_n},
        [w, saved = std::move(r.saved), reverse](const Grads& g, const Needs& needs) {
          ops::RnnSeqNeeds n;
          n.x = needs[0], n.h0 = needs[1], n.c0 = false, n.w_ih = needs[2], n.w_hh = needs[3],
          n.b_ih = needs[4], n.b_hh = needs[5], n.w_hr = false;
          ops::RnnSeqGrads d = ops::gru_seq_backward(g[0], g[1], w, saved, reverse, n);
          return Grads{d.dx, d.dh0, d.dw_ih, d.dw_hh, d.db_ih, d.db_hh};
        });
  }
  return {r.y, r.h_n, Tensor()};
}

}  // namespace finch
