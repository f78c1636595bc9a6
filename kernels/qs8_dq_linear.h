// Dynamic-quantization linear on the int8 dot kernels: bit-identical to reference::dq_linear.
//
// Per call x (f32) is quantized per tensor to int8 affine full range from its min/max (the same
// qparams and quantize() as the reference), the dot products run on u8×i8 (qs8_gemm.h:
// qu8s8_dot_rows over weight rows packed once here), and each output is the reference's one
// f32 step fma(float(acc), s_x·s_w[oc], bias[oc]) with the fused activation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/tensor.h"

namespace finch::quant::kernels {

class QDynamicLinear {
 public:
  // w: i8 [OC, K] (zero point 0) with per-channel scales s_w (OC entries); bias f32 [OC] or
  // undefined; act "none", "relu" or "relu6". Bad arguments: a finch::Error sentence.
  QDynamicLinear(const Tensor& w, std::vector<float> s_w, const Tensor& bias, std::string act);

  // x: f32 [.., K] -> f32 [.., OC].
  Tensor run(const Tensor& x) const;
  // The same with each row of x quantized from its own min/max: bit-identical to
  // reference::dq_linear_rows (and to run_row on each row).
  Tensor run_rows(const Tensor& x) const;
  // run_rows without Tensors: rows x + r·x_stride (any stride, negative too), K floats each ->
  // y [rows, OC]. Rows are quantized and run in groups that share each weight load, so a
  // recurrent layer computes its input side for many steps at once (bit-identical to run_row).
  void run_rows(const float* x, int64_t rows, int64_t x_stride, float* y) const;

  // Caller-owned buffers of run_row, grown on first use: a recurrent layer keeps one per
  // sequence so its steps allocate nothing. One Scratch per concurrent caller.
  struct Scratch {
    std::vector<int8_t> q;
    std::vector<uint8_t> xu;
    std::vector<int32_t> acc;
  };
  // One row without Tensors: x f32 [K] -> y f32 [OC], bit-identical to run() on x as [1, K].
  void run_row(const float* x, float* y, Scratch& s) const;
  int64_t in_features() const { return K_; }
  int64_t out_features() const { return OC_; }

 private:
  int64_t OC_, K_, Kp_;
  std::vector<float> s_w_, bias_;
  std::string act_;
  int act_kind_ = 0;            // act_ resolved once: 0 none, 1 relu, 2 relu6
  std::vector<int8_t> rows_;    // [OC][Kp], zero-padded; empty when K == Kp (w_raw_ is that layout)
  const int8_t* row_data() const { return rows_.empty() ? w_raw_.data<int8_t>() : rows_.data(); }
  int64_t K4_, OCp_;
  std::vector<int8_t> packed_;  // [K4][OCp][4], zero-padded (dq_detail::dot_block)
  std::vector<int32_t> wsum32_; // Σ_k w[oc][k] wrapped to int32: the correction only matters mod 2^32
  Tensor w_raw_, bias_raw_;     // for the reference, when K is too long for int32 sums
};

// Steps whose input side a dynamic recurrent layer computes at once (run_rows): enough rows to
// share each weight load, few enough that the chunk's gates stay in cache and memory is bounded.
inline constexpr int64_t kDqInputChunk = 64;

namespace dq_detail {
// y[i] = fma(float(acc[i] − zx·wsum[i]), s_x·s_w[i], bias[i]) for i < n, the int32 parts
// wrapping and the f32 multiply-add fused (one rounding) on every target: Highway's MulAdd
// where the target has a native FMA, std::fma elsewhere (MulAdd there is a multiply then an add).
void epilogue(const int32_t* acc, const int32_t* wsum, int32_t zx, float s_x, const float* s_w, const float* bias,
              int64_t n, float* y);
// acc[i] = Σ_k x[k]·w[oc0 + i][k] (wrapping int32) for i < m <= 64, oc0 a multiple of 64:
// the row kernel (qs8::qu8s8_dot_rows over rows [OC][Kp]) or, on AVX-512 VNNI, a broadcast
// kernel over packed [K4][OCp][4] (K4 = ceil(K / 4), OCp = OC rounded up to 64, zero-padded).
void dot_block(const uint8_t* x, const int8_t* rows, int64_t Kp, const int8_t* packed, int64_t K4, int64_t OCp,
               int64_t oc0, int64_t m, int32_t* acc);
// dot_block for nrows rows of x (row stride x_stride) into acc (row stride acc_stride): on
// AVX-512 VNNI four rows share each weight load; the sums equal dot_block's row by row.
void dot_block_rows(const uint8_t* x, int64_t x_stride, int64_t nrows, const int8_t* rows, int64_t Kp,
                    const int8_t* packed, int64_t K4, int64_t OCp, int64_t oc0, int64_t m, int32_t* acc,
                    int64_t acc_stride);
// False when some x[i] (n >= 1) is not finite; else *lo, *hi = the smallest and largest value
// (the sign of a zero bound may differ from a left-to-right scan: qparams widens the range to
// include 0, so ±0 give the same scale and zero point).
bool min_max_finite(const float* x, int64_t n, float* lo, float* hi);
}  // namespace dq_detail

}  // namespace finch::quant::kernels
