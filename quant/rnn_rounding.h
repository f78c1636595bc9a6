// Output-error rounding of a recurrent cell's int8 weights (finch quantize's default for the
// static int8 LSTM; docs/quantization.md, "Calibration"). Round to nearest puts each weight on
// its row's int8 grid alone; here each gate row is rounded column by column, and the rounding
// error of each column is pushed onto the columns not yet rounded (and finally onto the bias,
// which the int32 accumulator keeps at full precision) so that the row's pre-activation error
// over the calibration steps, Σ_t a_t (Δw · z_t)², is as small as the greedy order can make it:
// GPTQ's update (Frantar et al. 2022, from Optimal Brain Surgeon, Hassibi & Stork 1993) with a
// Hessian per row, H = Σ_t a_t z_t z_tᵀ, where z_t = [x_t, h_{t-1}, 1] is the cell's input at step
// t and a_t the squared sensitivity of what the row drives (the cell state for i, f, g; h for o)
// to its pre-activation in the float cell. A row whose gate is saturated at a step weighs that
// step 0: its error there changes nothing. The grid is unchanged: every row keeps the scale
// round-to-nearest gives it (max |w| / 127, the code ±127 kept on its largest weight), so the
// cell's qparams and the program's arithmetic are those of docs/quantization.md §12.
//
// The result is a set of float weights equal to codes × scale (and an adjusted b_ih): calibrating
// them with kernels::qlstm_calibrate gives back those codes, so the simulated model, the
// program and finch verify all derive the same cell from them.
#pragma once

#include <cstdint>
#include <vector>

namespace finch::quant {

// One row, in place. w [d], s [d]: column k's grid step (s[k] = 0: a column kept at full precision,
// e.g. the bias, which absorbs error and is never rounded), hess [d·d] row-major, symmetric
// positive semi-definite (destroyed). Quantized columns end as code·s[k] with the code in
// [-127, 127]. Damping: 1 % of the mean diagonal (GPTQ's), and a zero diagonal (an input never
// seen) becomes 1.
void round_row_by_output_error(std::vector<double>& w, const std::vector<double>& s, std::vector<double>& hess);

// Calibration steps of one LSTM layer-direction: z [n, IN + HO] (x_t, h_{t-1}) and the per-row
// weights a [n, 4H] (squared sensitivities, gate order i, f, g, o).
struct RnnRoundingSteps {
  int64_t n = 0, d = 0, rows = 0;
  std::vector<float> z, a;
};

// The LSTM's weights after output-error rounding: w_ih [4H, IN], w_hh [4H, HO] equal to their int8
// codes times the round-to-nearest row scales, b_ih [4H] (b_ih + the error pushed onto the bias;
// given only when the layer has biases). Fails with a sentence on mismatched sizes or non-finite
// values.
struct RoundedLstmWeights {
  std::vector<float> w_ih, w_hh, b_ih;
};
RoundedLstmWeights lstm_output_error_rounding(int64_t IN, int64_t H, int64_t HO, const std::vector<float>& w_ih,
                                              const std::vector<float>& w_hh, const std::vector<float>& b_ih,
                                              const RnnRoundingSteps& steps);

}  // namespace finch::quant
