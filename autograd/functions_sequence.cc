// Differentiable sequence-model primitives: the fused LSTM cell and scaled dot-product attention.
// Both are single tape nodes (DESIGN.md: composites may be primitives when faster or more
// stable) whose backward calls the fused kernels in ops/lstm.h and ops/attention.h.
#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/node.h"
#include "framework/grad_mode.h"
#include "ops/attention.h"
#include "ops/lstm.h"

namespace finch {

using autograd::Grads;
using autograd::Needs;

std::pair<Tensor, Tensor> lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c,
                                    const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                                    const Tensor& b_hh) {
  const bool rec = autograd::should_record({x, h, c, w_ih, w_hh, b_ih, b_hh});
  NoGradGuard ng;
  ops::LstmCellOutput r = ops::lstm_cell(x, h, c, w_ih, w_hh, b_ih, b_hh);
  if (rec) {
    auto det = [](const Tensor& t) { return t.defined() ? t.detach() : Tensor(); };
    // Outputs h' and c' are returned to the caller; the saved gates/tanh_c are internal buffers
    // that nobody else holds, so no copy is needed.
    autograd::record(
        "lstm_cell", {x, h, c, w_ih, w_hh, b_ih, b_hh}, {r.h, r.c},
        [x = det(x), h = det(h), c = det(c), w_ih = det(w_ih), w_hh = det(w_hh),
         gates = r.gates, tanh_c = r.tanh_c](const Grads& g, const Needs& needs) {
          ops::LstmCellNeeds n{needs[0], needs[1], needs[2], needs[3],
                               needs[4], needs[5], needs[6]};
          ops::LstmCellGrads d =
              ops::lstm_cell_backward(g[0], g[1], x, h, c, w_ih, w_hh, gates, tanh_c, n);
          return Grads{d.dx, d.dh, d.dc, d.dw_ih, d.dw_hh, d.db_ih, d.db_hh};
        });
  }
  return {r.h, r.c};
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask, bool is_causal,
                                    std::optional<double> scale) {
  // A float mask (e.g. a learned relative-position bias) is differentiable; a bool one is not.
  const bool float_mask = mask.defined() && mask.dtype() != DType::b8;
  const Tensor grad_mask = float_mask ? mask : Tensor();
  autograd::CaptureScope cap;
  const bool rec = autograd::should_record({q, k, v, grad_mask});
  NoGradGuard ng;
  ops::AttentionOutput r = ops::scaled_dot_product_attention(q, k, v, mask, is_causal, scale);
  // Recorded for graph analyses (compress/channel_groups.h ties heads through it); no runtime op
  // takes [B, NH, S, HD] heads (BERT programs use compile/bert_program.h's "attention"), so a
  // program of such a capture is refused when it loads.
  if (cap.active())
    cap.record("scaled_dot_product_attention", {q, k, v, mask}, {r.out}, {{"is_causal", is_causal}});
  if (rec) {
    autograd::record(
        "scaled_dot_product_attention", {q, k, v, grad_mask}, {r.out},
        [q = q.detach(), k = k.detach(), v = v.detach(),
         mask = grad_mask.defined() ? grad_mask.detach() : Tensor(), probs = r.probs,
         scale](const Grads& g, const Needs& needs) {
          ops::AttentionNeeds n{needs[0], needs[1], needs[2], needs[3]};
          ops::AttentionGrads d =
              ops::scaled_dot_product_attention_backward(g[0], q, k, v, probs, mask, scale, n);
          return Grads{d.dq, d.dk, d.dv, d.dmask};
        });
  }
  return r.out;
}

}  // namespace finch
