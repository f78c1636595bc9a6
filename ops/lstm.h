// One fused LSTM step (torch.nn.LSTMCell, gate order i, f, g, o): forward, backward, reference.
//
// Shape vocabulary: B batch, IN input features, H hidden size, G = 4H gate pre-activations.
//   gates = x·W_ihᵀ + h·W_hhᵀ + b_ih + b_hh           [B, 4H]  (two gemms into one buffer)
//   i, f, g, o = σ(gates[0:H]), σ(gates[H:2H]), tanh(gates[2H:3H]), σ(gates[3H:4H])
//   c' = f·c + i·g,  h' = o·tanh(c')
// The fused pass does every activation and the cell update in one sweep over the gate buffer,
// overwriting the pre-activations with the activated gates that backward needs (saving them
// costs nothing extra and lets backward avoid recomputing σ/tanh).
//
// Later int8 LSTMs (int16 cell state) reuse this split: gemms for the matrix parts, one
// elementwise pass for the gates (lstm_gates_forward / lstm_gates_backward below).
#pragma once

#include <cstdint>

#include "framework/tensor.h"

namespace finch::ops {

struct LstmCellOutput {
  Tensor h;       // h' [B, H]
  Tensor c;       // c' [B, H]
  Tensor gates;   // activated i, f, g, o [B, 4H] (saved for backward)
  Tensor tanh_c;  // tanh(c') [B, H]       (saved for backward)
};

// x [B, IN], h/c [B, H], w_ih [4H, IN], w_hh [4H, H], b_ih/b_hh [4H] or undefined.
// F32 (BLAS + Highway fused pass, parallel over B) and F64 (BLAS + scalar pass).
LstmCellOutput lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                         const Tensor& w_hh, const Tensor& b_ih = Tensor(),
                         const Tensor& b_hh = Tensor());
// Plain loops (gemm_reference + scalar activations): the reference the fast path is checked by.
LstmCellOutput lstm_cell_reference(const Tensor& x, const Tensor& h, const Tensor& c,
                                   const Tensor& w_ih, const Tensor& w_hh,
                                   const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());

// Which gradients the caller wants (the rest are left undefined and not computed).
struct LstmCellNeeds {
  bool x = true, h = true, c = true, w_ih = true, w_hh = true, b_ih = true, b_hh = true;
};
struct LstmCellGrads {
  Tensor dx, dh, dc, dw_ih, dw_hh, db_ih, db_hh;
};

// From dh' and dc' (both [B, H]; pass zeros for one that got no gradient) and the forward's
// saved gates / tanh_c back to every input. db_ih and db_hh are both the column sums of the
// gate gradient; they are produced only when asked for (an undefined bias needs none).
LstmCellGrads lstm_cell_backward(const Tensor& dh_new, const Tensor& dc_new, const Tensor& x,
                                 const Tensor& h, const Tensor& c, const Tensor& w_ih,
                                 const Tensor& w_hh, const Tensor& gates, const Tensor& tanh_c,
                                 const LstmCellNeeds& needs = {});
LstmCellGrads lstm_cell_backward_reference(const Tensor& dh_new, const Tensor& dc_new,
                                           const Tensor& x, const Tensor& h, const Tensor& c,
                                           const Tensor& w_ih, const Tensor& w_hh,
                                           const Tensor& gates, const Tensor& tanh_c,
                                           const LstmCellNeeds& needs = {});

// --- the fused elementwise passes (exposed for tests and for later quantized cells) ---
// gates [B, 4H] pre-activations in, activated gates out (in place); c [B, H]; writes h', c',
// tanh(c'). Rows are B; all buffers contiguous. Runs on the best Highway target.
void lstm_gates_forward_f32(int64_t B, int64_t H, float* gates, const float* c, float* h_new,
                            float* c_new, float* tanh_c);
// dh', dc' [B, H], activated gates [B, 4H], c, tanh_c [B, H] -> dgates [B, 4H] (pre-activation
// gradients) and dc [B, H] (may be null when not needed).
void lstm_gates_backward_f32(int64_t B, int64_t H, const float* dh_new, const float* dc_new,
                             const float* gates, const float* c, const float* tanh_c,
                             float* dgates, float* dc);

// The same two passes in F64 with scalar loops (the gradcheck path: a SIMD exp's rounding would
// drown the finite differences). dc_new and dc may be the same buffer.
void lstm_gates_forward_f64(int64_t B, int64_t H, double* gates, const double* c, double* h_new,
                            double* c_new, double* tanh_c);
void lstm_gates_backward_f64(int64_t B, int64_t H, const double* dh_new, const double* dc_new,
                             const double* gates, const double* c, const double* tanh_c,
                             double* dgates, double* dc);

}  // namespace finch::ops
