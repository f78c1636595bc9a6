// Scalar, exact reference kernels of the int8 runtime: one plain-loop function per quantized op of
// runtime/ops.md. Optimized kernels are tested against these bit for bit.
//
// Every integer step reuses the spec's functions (kernels/requant.h, docs/quantization.md):
// int32 accumulation of centered codes (q − z) modulo 2^32 (§10), one rounding_shift per output value (ties
// toward +infinity), a clamp to [qmin, qmax]. Nothing here rounds twice. The exception is qadd,
// which follows the simulated model's f32 rule (docs/quantization.md §7), and dq_linear's f32 output.
//
// Shapes: N batch, C input channels, H×W input plane, OC output channels, KH×KW kernel,
// OH×OW output plane, K reduction length of a linear layer. Codes are i8 or u8 tensors (any
// strides); outputs are new contiguous tensors. Bad shapes, dtypes or parameters give a
// finch::Error sentence naming the op.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"
#include "ops/conv.h"
#include "ops/pool.h"
#include "kernels/requant.h"

namespace finch::quant::reference {

// rq tensors: i32 [OC, 2], row c = (multiplier, shift) of a FixedPointMultiplier (ops.md `rq`).
Tensor rq_tensor(const std::vector<FixedPointMultiplier>& m);
// The inverse, with checks: rq must be i32 [OC, 2] with multipliers >= 0. `op` names the caller.
std::vector<FixedPointMultiplier> rq_multipliers(const Tensor& rq, int64_t OC, const char* op);

// x: i8/u8 [N, C, H, W] with zero point zx; w: i8 [OC, C/groups, KH, KW] (zero point 0);
// bias: i32 [OC] or undefined; rq: i32 [OC, 2]. Returns out_dtype (i8/u8) [N, OC, OH, OW]:
//   acc = Σ_{c, kh, kw in the window} (x − zx) · w + bias[oc]      (modulo 2^32, see below)
//   y   = requantize(acc, m[oc], z_out, qmin, qmax)
// Padded positions are skipped (the same as x = zx there: they add 0). qmin/qmax already hold
// any fused activation (fused_activation_range). groups = C is depthwise.
Tensor qconv2d(const Tensor& x, int32_t zx, const Tensor& w, const Tensor& bias, const Tensor& rq,
               const ops::Conv2dParams& p, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);

// x: i8/u8 [.., K], w: i8 [OC, K], bias: i32 [OC] or undefined, rq: i32 [OC, 2] -> [.., OC];
// the rule of qconv2d with one window of K.
Tensor qlinear(const Tensor& x, int32_t zx, const Tensor& w, const Tensor& bias, const Tensor& rq, int32_t z_out,
               int32_t qmin, int32_t qmax, DType out_dtype);

// a, b: same shape, i8/u8 each (any strides), scales sa, sb and zero points za, zb. The f32 rule of
// docs/quantization.md §7, the add of the simulated model bit for bit, each step one f32 operation:
//   y = clamp(rne((f32(a − za)·sa + f32(b − zb)·sb) / s_out) + z_out, qmin, qmax)
// rne = round half to even (std::nearbyint). qmin/qmax already hold any fused activation.
// (The all-integer AddRequant of requant.h is not this rule and no program uses it.)
Tensor qadd(const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb, float s_out, int32_t z_out,
            int32_t qmin, int32_t qmax, DType out_dtype);

// x: i8/u8 [N, C, H, W] or [C, H, W]. Max of the codes in each window (same scale and zero point
// in and out, same dtype); padding never wins. Output size: ops::pool_out_size (PyTorch's rule,
// ceil_mode windows must start inside the input or the left padding). count_include_pad unused.
Tensor qmax_pool2d(const Tensor& x, const ops::Pool2dParams& p);

// Average pools over codes: for each window, sum = Σ (q − zx) in int64 (exact), count = PyTorch's
// divisor, then y = clamp(z_out + rounding_shift(sum · M, N), qmin, qmax) with (M, N) =
// quantize_multiplier(double(s_in) / (double(s_out) · count)): one rounding of the exact sum.
//   qavg_pool2d: windows and divisor as torch.nn.AvgPool2d (count_include_pad counts the padded
//     cells inside input + padding; otherwise only the input cells).
//   qadaptive_avg_pool2d: window [floor(i·H/OH), ceil((i+1)·H/OH)) per dim, divisor = its cells.
Tensor qavg_pool2d(const Tensor& x, const ops::Pool2dParams& p, float s_in, int32_t zx, float s_out, int32_t z_out,
                   int32_t qmin, int32_t qmax, DType out_dtype);
Tensor qadaptive_avg_pool2d(const Tensor& x, int64_t OH, int64_t OW, float s_in, int32_t zx, float s_out,
                            int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);

// ReLU on codes (same scale and zero point in and out, same dtype):
//   qrelu:  clamp(q, max(qmin, z), qmax)                      (z is the code of 0.0)
//   qrelu6: clamp to fused_activation_range("relu6", s, z, [qmin, qmax]): [z, code of 6.0]
Tensor qrelu(const Tensor& x, int32_t z, int32_t qmin, int32_t qmax);
Tensor qrelu6(const Tensor& x, float s, int32_t z, int32_t qmin, int32_t qmax);

// Concatenation along `dim` of inputs xs[i] (i8/u8, scale s[i], zero point z[i]) into one output
// (s_out, z_out): y = requantize(q − z[i], quantize_multiplier(double(s[i]) / double(s_out)), z_out,
// qmin, qmax). An input whose scale and zero point equal the output's is copied (clamped to
// [qmin, qmax]), which is the same result: the multiplier of 1.0 is exact (2^30 · 2^-30).
Tensor qcat(const std::vector<Tensor>& xs, const std::vector<float>& s, const std::vector<int32_t>& z, int64_t dim,
            float s_out, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);

// Dynamic quantization: x f32 [.., K], w i8 [OC, K] with per-channel scales s_w (OC entries,
// zero point 0), bias f32 [OC] or undefined, act "none"/"relu"/"relu6" -> f32 [.., OC].
// Per call, x is quantized per tensor to int8 affine full range (qparams of QSpec{8 bits, signed,
// affine} from min/max of x, then quantize()); acc = Σ (qx − zx)·w exactly in int32; then
//   y = fma(float(acc), s_x * s_w[oc], bias[oc])     in f32, one rounding (see .cc).
Tensor dq_linear(const Tensor& x, const Tensor& w, const std::vector<float>& s_w, const Tensor& bias,
                 const std::string& act);
// The per-row form (a dq_linear node with per_row): each row of x (the last dim) is quantized
// from its own min/max, so a row of small values keeps its precision beside a row with an
// outlier (a transformer's tokens differ by orders of magnitude). Row r of the result equals
// dq_linear(x[r] as [1, K], ...) bit for bit.
Tensor dq_linear_rows(const Tensor& x, const Tensor& w, const std::vector<float>& s_w, const Tensor& bias,
                      const std::string& act);

// One step of the dynamic int8 LSTM for one sample (kernels::QDynamicLstm's specification):
//   g = dq_linear(x; w_ih, s_ih, bias) + dq_linear(h; w_hh, s_hh)       f32 [4H], in that order
//   m, c' = ops::lstm_gates_forward_f32(g, c)                            m = o·tanh(c') [H]
//   h' = dq_linear(m; w_hr, s_hr) when w_hr is defined (a projection [P, H]), else m
// x f32 [IN], h f32 [HO], c f32 [H]; w_ih i8 [4H, IN], w_hh i8 [4H, HO], w_hr i8 [P, H] or
// undefined; bias f32 [4H] (b_ih + b_hh) or undefined. Each dq_linear quantizes its one row from
// its own min/max. Returns {h' [HO], c' [H]}.
struct DqLstmStep {
  Tensor h, c;
};
DqLstmStep dq_lstm_step(const Tensor& x, const Tensor& h, const Tensor& c, const Tensor& w_ih,
                        const std::vector<float>& s_ih, const Tensor& bias, const Tensor& w_hh,
                        const std::vector<float>& s_hh, const Tensor& w_hr, const std::vector<float>& s_hr);

// The accumulator rule (docs/quantization.md §10): qconv2d, qlinear and dq_linear reduce the exact
// Σ (x − zx)·w + bias modulo 2^32, as the int32 lanes of the fast kernels do. A program must never
// reach that wrap; its worst case over every input is, per output channel,
//   max_abs_x · Σ_k |w[oc, k]| + |bias[oc]|
// with max_abs_x the largest |x − zx| the input dtype allows (max(zx − code_min, code_max − zx),
// 255 for dq_linear). Returns the channel with the largest bound; w: i8 [OC, ...], bias: i32 [OC]
// or undefined. The loader refuses a node whose bound exceeds INT32_MAX.
struct AccumulatorBound {
  int64_t bound = 0, channel = 0, abs_weight_sum = 0, abs_bias = 0;
};
AccumulatorBound accumulator_bound(const Tensor& w, const Tensor& bias, int64_t max_abs_x);

}  // namespace finch::quant::reference
