// Operators of kernels/qs8_eltwise.h: the checks of the references (same sentences, the
// op named qs8_*), contiguous inputs, and the thread split over element chunks or planes.
#include "kernels/qs8_eltwise.h"

#include <algorithm>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_eltwise_kernels.h"
#include "kernels/qs8_gemm.h"
#include "kernels/reference_util.h"
#include "kernels/requant.h"

namespace finch::quant::kernels {

using namespace reference::detail;

// The elementwise passes tell the pool the bytes they stream (framework/parallel.h): a small
// tensor stays on the caller. Every element is computed the same way in any chunk, so results do
// not depend on the split.

Tensor qs8_add(const Tensor& a, float sa, int32_t za, const Tensor& b, float sb, int32_t zb, float s_out,
               int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qs8_add";
  check_add_args(op, a, sa, za, b, sb, zb, s_out, z_out, qmin, qmax, out_dtype);
  const Tensor ca = a.contiguous(), cb = b.contiguous();
  Tensor y = empty(a.shape(), out_dtype);
  const AddArgs g{ca.raw_data(), ca.dtype() == DType::u8, sa, za, cb.raw_data(), cb.dtype() == DType::u8, sb, zb,
                  s_out, z_out, qmin, qmax, y.raw_data(), out_dtype == DType::u8};
  parallel_for(0, a.numel(), Work::bytes(3), [&](int64_t lo, int64_t hi) { qs8_add_range(g, lo, hi); });
  return y;
}

namespace {

// y = min(max(x, lo), hi) over element chunks: what libstdc++'s std::clamp computes in the
// reference, also when relu's lo = max(qmin, z) lies above qmax (every code becomes qmax).
Tensor clamp_codes(const Tensor& x, int32_t lo, int32_t hi) {
  const Tensor xc = x.contiguous();
  Tensor y = empty(x.shape(), x.dtype());
  const int64_t n = x.numel();
  parallel_for(0, n, Work::bytes(2), [&](int64_t b, int64_t e) {
    if (x.dtype() == DType::u8)
      qs8_clamp(xc.data<uint8_t>() + b, y.data<uint8_t>() + b, e - b, lo, hi);
    else
      qs8_clamp(xc.data<int8_t>() + b, y.data<int8_t>() + b, e - b, lo, hi);
  });
  return y;
}

}  // namespace

Tensor qs8_relu(const Tensor& x, int32_t z, int32_t qmin, int32_t qmax) {
  check_codes("qs8_relu", "input x", x);
  check_output("qs8_relu", z, qmin, qmax, x.dtype());
  return clamp_codes(x, std::max(qmin, z), qmax);  // z is the code of 0.0
}

Tensor qs8_relu6(const Tensor& x, float s, int32_t z, int32_t qmin, int32_t qmax) {
  check_codes("qs8_relu6", "input x", x);
  check_output("qs8_relu6", z, qmin, qmax, x.dtype());
  check_scale("qs8_relu6", "scale", s);
  const QRange r = fused_activation_range("relu6", s, z, QRange{qmin, qmax});  // [z, code of 6.0]
  return clamp_codes(x, int32_t(r.qmin), int32_t(r.qmax));
}

Tensor qs8_max_pool2d(const Tensor& x, const ops::Pool2dParams& p) {
  constexpr const char* op = "qs8_max_pool2d";
  check_codes(op, "input x", x);
  if (x.dim() != 3 && x.dim() != 4) fail(op, ": expected input x of shape [N, C, H, W] or [C, H, W], got ", describe(x));
  Shape shape = x.shape();
  const int64_t H = x.size(-2), W = x.size(-1), P = x.numel() / std::max<int64_t>(1, H * W);
  if (H < 1 || W < 1) fail(op, ": expected a non-empty input plane, got ", describe(x));
  int64_t OH = 0, OW = 0;
  check_pool(op, p, H, W, OH, OW);
  shape[shape.size() - 2] = OH;
  shape[shape.size() - 1] = OW;
  const Tensor xc = x.contiguous();
  Tensor y = empty(shape, x.dtype());
  const MaxPoolArgs a{xc.raw_data(), y.raw_data(), x.dtype() == DType::u8, H, W, OH, OW, p.kh, p.kw, p.sh, p.sw,
                      p.ph, p.pw};
  if (P > 0)
    parallel_for(0, P, Work::bytes(double(H * W + OH * OW * p.kh * p.kw)),
                 [&](int64_t b, int64_t e) { qs8_max_pool2d_planes(a, b, e); });
  return y;
}

}  // namespace finch::quant::kernels

namespace finch::quant::kernels::qs8 {

// qs8_gemm.h: the fallback of a tile's fused add, row by row over the codes it has stored.
void tile_add_rows(const TileAdd& a, bool conv_u8, uint8_t* out, int64_t row_stride, int64_t rows, int64_t count) {
  for (int64_t m = 0; m < rows; ++m) {
    uint8_t* y = out + m * row_stride;
    const AddArgs g{y, conv_u8, a.s_conv, a.z_conv, a.r_at(y), a.r_u8, a.s_r, a.z_r, a.s_out, a.z_out, a.qmin, a.qmax,
                    y, a.y_u8};
    qs8_add_range(g, 0, count);
  }
}

}  // namespace finch::quant::kernels::qs8
