// Sparse conv2d (groups 1) and linear operators over the SpMM micro-kernels of sparse_gemm.h:
// the weight's zeros dropped once at construction (rows of nonzeros by output channel), run()
// giving the dense operators' results: fp32 within float rounding of ops::conv2d / ops::linear,
// int8 bit for bit reference::qconv2d / reference::qlinear (and so QConv2d / QLinear).
//
// Shapes: x [N, C, H, W] -> y [N, OC, OH, OW]; K = C·KH·KW; P = OH·OW pixels of one image.
// A 1×1 stride-1 unpadded conv reads its CHW input planes in place (x of one image is [K][P]);
// any other stride-1 conv reads its taps in place from a padded copy of the planes (a grid of
// OH × (W + 2·pw) virtual pixels, the extra columns dropped); strided convs copy the im2col rows
// [K][P]. Padding is 0, or the input zero point for int8, whose taps then cancel against the
// weight-sum offset as in the dense kernels. A Linear [R, K] with R >= kSpmmRows runs the same SpMM on x transposed ([K][R]);
// with fewer rows, one gathered dot per output (sparse_gemm.h f32_spmv / qs8_spmv).
// Threads split over (column block, output-channel range); each output is computed the same way
// whatever the thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "framework/tensor.h"
#include "kernels/fused_act.h"
#include "kernels/requant.h"
#include "kernels/sparse_gemm.h"
#include "ops/conv.h"

namespace finch::quant::kernels {

// Linear inputs with at least this many rows run as SpMM over the transposed input.
inline constexpr int64_t kSpmmRows = 8;

class F32SparseConv2d {
 public:
  // w: f32 [OC, C, KH, KW] (groups must be 1); bias: f32 [OC] or undefined.
  F32SparseConv2d(const Tensor& w, const Tensor& bias, const ops::Conv2dParams& p, FusedAct act);
  // x: f32 [N, C, H, W] (any strides) -> f32 [N, OC, OH, OW].
  Tensor run(const Tensor& x) const;
  double sparsity() const { return w_.sparsity(); }

 private:
  ops::Conv2dParams p_;
  int64_t C_, KH_, KW_;
  FusedAct act_;
  SparseRows<float> w_;
  std::vector<float> bias_;  // [OC]
};

class F32SparseLinear {
 public:
  // w: f32 [OC, K]; bias: f32 [OC] or undefined.
  F32SparseLinear(const Tensor& w, const Tensor& bias, FusedAct act);
  // x: f32 [.., K] (any strides) -> f32 [.., OC].
  Tensor run(const Tensor& x) const;
  double sparsity() const { return w_.sparsity(); }

 private:
  FusedAct act_;
  SparseRows<float> w_;
  std::vector<float> bias_;
};

class QSparseConv2d {
 public:
  // The arguments of QConv2d (qs8_conv.h) with groups 1: w i8 [OC, C, KH, KW]; bias i32 [OC] or
  // undefined; one multiplier per OC; the input's code type and zero point; the output's.
  QSparseConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, const ops::Conv2dParams& p,
                DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);
  // x: x_dtype [N, C, H, W] (any strides) -> out_dtype [N, OC, OH, OW].
  Tensor run(const Tensor& x) const;
  double sparsity() const { return w_.sparsity(); }

 private:
  ops::Conv2dParams p_;
  int64_t C_, KH_, KW_;
  DType x_dtype_, out_dtype_;
  int32_t zx_u8_;
  qs8::OutQuant oq_;
  SparseRows<int8_t> w_;
  // Where the target has the channel-quad kernel (sparse_gemm.h qs8_quad_kernel, AVX-512 VNNI)
  // and the kernel is larger than 1×1, the same weight by quads, and run() reads channel-quad
  // interleaved copies of the input.
  bool quad_ = false;
  SparseRows<int32_t> wq_;
  std::vector<qs8::RowQuant> rq_;
  Tensor run_quads(const Tensor& x) const;
};

class QSparseLinear {
 public:
  // The arguments of QLinear: w i8 [OC, K]; the rest as QSparseConv2d.
  QSparseLinear(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, DType x_dtype, int32_t zx,
                int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);
  // x: x_dtype [.., K] (any strides) -> out_dtype [.., OC].
  Tensor run(const Tensor& x) const;
  double sparsity() const { return w_.sparsity(); }

 private:
  DType x_dtype_, out_dtype_;
  int32_t zx_u8_;
  qs8::OutQuant oq_;
  SparseRows<int8_t> w_;
  std::vector<qs8::RowQuant> rq_;
};

}  // namespace finch::quant::kernels
