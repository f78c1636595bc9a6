// Optimized exact int8 convolution and linear operators: weights packed once at construction,
// run() bit-identical to reference::qconv2d / reference::qlinear (kernels/reference.h).
//
// Method (qs8_gemm.h): activations are taken as u8 (i8 codes XOR 0x80, zx + 128), so
//   acc = Σ (x − zx)·w + bias = Σ x_u8·w − zx_u8·Σw + bias
// with Σw and bias folded into one int32 offset per output channel at construction. The sums
// wrap in int32, which is exact whenever the true accumulator fits int32 (the reference fails
// otherwise). One GEMM per image and group: out[oc][pixel], vector lanes over pixels. With
// AVX-512 VNNI and >= 4 channels per group (not a plain 1×1 conv), the GEMM reads 4-channel
// interleaved phase planes in place (an indirect GEMM); otherwise it packs im2col tiles. On
// AVX-512 VNNI, convs with >= 16 outputs per group take the indirect conv of qs8_igemm.h instead
// (qs8_conv_igemm.cc): no padded planes, real pixels only; a plain 1×1 conv only on planes where
// that computes clearly fewer pixels (7×7).
// Threads split over (image, group, pixel tile); every output is computed the same way whatever
// the thread count.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "framework/tensor.h"
#include "ops/conv.h"
#include "kernels/qs8_gemm.h"
#include "kernels/qs8_igemm.h"
#include "kernels/requant.h"

namespace finch::quant::kernels {

struct AddArgs;  // qs8_eltwise_kernels.h

// A residual add fused after a QConv2d: out = reference::qadd of the conv's codes (the conv's
// output quantization s_conv/z_conv, its own qmin/qmax applied first, as the unfused program
// stores them) and a second operand r of the conv output's shape. conv_first says which qadd
// operand the conv is (a or b): f32 addition is commutative, but the order is kept as stored.
struct QAddEpilogue {
  float s_conv = 1;
  int32_t z_conv = 0;
  float s_r = 1;
  int32_t z_r = 0;
  DType r_dtype = DType::i8;
  float s_out = 1;
  int32_t z_out = 0, qmin = -128, qmax = 127;
  DType out_dtype = DType::i8;
  bool conv_first = true;
};

class QConv2d {
 public:
  // w: i8 [OC, C/groups, KH, KW]; bias: i32 [OC] or undefined; m: one FixedPointMultiplier per
  // OC; x_dtype (i8/u8) and zx: the input's code type and zero point; z_out, qmin, qmax,
  // out_dtype as in reference::qconv2d. Depthwise (groups == C) works but is not fast.
  QConv2d(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, const ops::Conv2dParams& p,
          DType x_dtype, int32_t zx, int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);

  // x: x_dtype [N, C, H, W] (any strides) -> out_dtype [N, OC, OH, OW].
  Tensor run(const Tensor& x) const;
  // run(x) and then the add of `e` with r (e.r_dtype [N, OC, OH, OW], any strides), applied by
  // each thread to the outputs it has just stored, while they are in cache and inside the conv's
  // own thread region (the unfused qadd was a separate pass and a separate fork/join). On AVX-512
  // VNNI the indirect conv and the GEMM tiles that store plain rows add in their register
  // epilogue instead (qs8_gemm.h TileAdd: conv code, residual code, one byte store). Bit for bit
  // reference::qadd(run(x), r) (or qadd(r, run(x))): the same codes, then the same f32 rule.
  Tensor run_add(const Tensor& x, const Tensor& r, const QAddEpilogue& e) const;
  // Whether run() takes the indirect conv (qs8_igemm.h) on the current Highway target for an
  // input plane of H×W (a plain 1×1 conv takes it only on planes where the GEMM's pixel tiles
  // would compute clearly more pixels, qs8_conv.cc direct_igemm_pays).
  bool uses_igemm(int64_t H, int64_t W) const;

 private:
  Tensor run_impl(const Tensor& x, const Tensor* r, const QAddEpilogue* e) const;
  // The indirect conv of x's codes xb [N, C, H, W] into y, and the fused add when `add` is set
  // (in each tile's registers; add->r_delta relative to y).
  void run_igemm(const uint8_t* xb, int64_t N, int64_t H, int64_t W, Tensor& y, const qs8::TileAdd* add) const;
  struct IgemmShape;
  std::shared_ptr<const IgemmShape> igemm_shape(int64_t H, int64_t W) const;

  ops::Conv2dParams p_;
  int64_t OC_, Cg_, KH_, KW_;
  // K in quads (Cg >= 4): k = ((c / 4)·KH·KW + tap)·4 + c % 4, channels padded to a multiple of 4
  // with zero weights, the order of the 4-channel interleaved planes that the indirect GEMM
  // reads in place (qs8_gemm.h qu8s8_gemm_tile_indirect); else k = c·KH·KW + tap.
  bool quad_ = false;
  DType x_dtype_, out_dtype_;
  int32_t zx_u8_, z_out_, qmin_, qmax_;
  std::vector<int8_t> packed_;           // per group: packed_weights of [OC/groups][K] in the order above
  std::vector<qs8::RowQuant> rq_;        // per OC
  // The indirect conv (qs8_igemm.h), chosen at construction for k×k or strided convs with 1 or
  // >= 4 channels and >= 16 outputs per group whose requantization fits its rule; run() takes it
  // where the target has the kernel, the phase-plane GEMM above elsewhere.
  bool igemm_ = false;
  int64_t ig_nv_ = 1;                    // 16-channel vectors per block
  std::vector<int8_t> ig_packed_;        // per group: the blocks of igemm_pack_weights
  std::vector<qs8::IgemmQuant16> ig_q_;  // per group: blocks · ig_nv_ vectors
  std::vector<qs8::IgemmQuant16> ig_q0_; // the same with z_out 0: the fused add's conv codes − z_out
  struct IgemmCache;                     // the indirection table of the last input shape
  static std::shared_ptr<IgemmCache> new_igemm_cache();
  std::shared_ptr<IgemmCache> ig_cache_;
};

class QLinear {
 public:
  // w: i8 [OC, K]; bias: i32 [OC] or undefined; m: one FixedPointMultiplier per OC; the rest as
  // QConv2d.
  QLinear(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, DType x_dtype, int32_t zx,
          int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype);

  // x: x_dtype [.., K] (any strides) -> out_dtype [.., OC].
  Tensor run(const Tensor& x) const;

 private:
  int64_t OC_, K_, Kp_;
  DType x_dtype_, out_dtype_;
  int32_t zx_u8_, z_out_, qmin_, qmax_;
  std::vector<int8_t> packed_;  // GEMM blocks (many rows)
  std::vector<int8_t> rows_;    // [OC][Kp] zero-padded rows (GEMV, few rows)
  std::vector<qs8::RowQuant> rq_;
};

}  // namespace finch::quant::kernels
