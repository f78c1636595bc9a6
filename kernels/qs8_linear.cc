// QLinear (kernels/qs8_conv.h): validation, weight packing, and two drivers.
//
// Shapes: x [R.., K] viewed as [rows, K], w [OC, K], y [rows, OC]; T rows per activation tile.
// Many rows: the GEMM of qs8_gemm.h with output channels as the weight side and rows as the
// vector lanes (a transposed store). Few rows (a batch of one token or one image): a row of
// that width would fill one lane of T, so each output is a dot product over K instead, with
// vectors along K (qu8s8_dot_rows), parallel over output channels.
#include <algorithm>

#include "framework/error.h"
#include "framework/parallel.h"
#include "kernels/qs8_conv.h"
#include "kernels/reference_util.h"

namespace finch::quant::kernels {

using namespace reference::detail;

QLinear::QLinear(const Tensor& w, const Tensor& bias, std::vector<FixedPointMultiplier> m, DType x_dtype, int32_t zx,
                 int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype)
    : x_dtype_(x_dtype), out_dtype_(out_dtype), z_out_(z_out), qmin_(qmin), qmax_(qmax) {
  constexpr const char* op = "QLinear";
  if (!w.defined() || w.dtype() != DType::i8 || w.dim() != 2 || w.size(0) < 1)
    fail(op, ": expected the weight as I8 [OC, K] (OC >= 1), got ", describe(w));
  if (x_dtype != DType::i8 && x_dtype != DType::u8) fail(op, ": expected an I8 or U8 input type");
  check_zero_point(op, "input zero point", zx, x_dtype);
  check_output(op, z_out, qmin, qmax, out_dtype);
  OC_ = w.size(0), K_ = w.size(1);
  Kp_ = std::max<int64_t>(1, (K_ + qs8::kDotAlign - 1) / qs8::kDotAlign) * qs8::kDotAlign;
  if (int64_t(m.size()) != OC_) fail(op, ": expected ", OC_, " requantization multipliers, got ", m.size());
  for (const auto& v : m)
    if (v.multiplier < 0) fail(op, ": expected multipliers >= 0, got ", v.multiplier);
  std::vector<int32_t> b;
  if (bias.defined()) {
    if (bias.dtype() != DType::i32 || bias.dim() != 1 || bias.size(0) != OC_)
      fail(op, ": expected the bias as I32 [", OC_, "] or absent, got ", describe(bias));
    b = bias.to_vector<int32_t>();
  }
  zx_u8_ = x_dtype == DType::i8 ? zx + 128 : zx;
  const Tensor wc = w.contiguous();
  const int8_t* wp = wc.data<int8_t>();
  packed_ = qs8::pack_weights(wp, OC_, K_);
  rows_.assign(size_t(OC_ * Kp_), 0);
  for (int64_t oc = 0; oc < OC_; ++oc) std::copy(wp + oc * K_, wp + (oc + 1) * K_, rows_.begin() + oc * Kp_);
  rq_ = qs8::row_quants(qs8::weight_sums(wp, OC_, K_), b, m, zx_u8_);
}

Tensor QLinear::run(const Tensor& x) const {
  constexpr const char* op = "QLinear";
  if (!x.defined() || x.dtype() != x_dtype_ || x.dim() < 1 || x.size(-1) != K_)
    fail(op, ": expected input x as ", x_dtype_ == DType::i8 ? "I8" : "U8", " [.., ", K_, "], got ", describe(x));
  Shape out_shape = x.shape();
  out_shape.back() = OC_;
  Tensor y = empty(out_shape, out_dtype_);
  const int64_t rows = y.numel() / OC_;
  if (rows == 0) return y;
  const Tensor xc = x.contiguous();
  auto* out = static_cast<uint8_t*>(y.raw_data());
  const qs8::OutQuant oq{z_out_, qmin_, qmax_, out_dtype_ == DType::u8};
  const int64_t T = qs8::tile_pixels();

  if (rows < T / 2) {
    // GEMV: each row padded to Kp (weights are 0 there), dot products for a chunk of channels.
    std::vector<uint8_t> xu(size_t(rows * Kp_), 0);
    for (int64_t r = 0; r < rows; ++r)
      qs8::to_u8(static_cast<const uint8_t*>(xc.raw_data()) + r * K_, x_dtype_ == DType::i8, K_, xu.data() + r * Kp_);
    // A GEMV streams each weight row once: budget it at half the GEMM tile rate.
    parallel_for(0, OC_, Work::macs_i8(2.0 * double(rows * Kp_)), [&](int64_t b, int64_t e) {
      std::vector<int32_t> acc(size_t(e - b));
      for (int64_t r = 0; r < rows; ++r) {
        qs8::qu8s8_dot_rows(xu.data() + r * Kp_, rows_.data() + b * Kp_, e - b, Kp_, acc.data());
        for (int64_t oc = b; oc < e; ++oc) {
          const auto& q = rq_[size_t(oc)];
          const int32_t a = int32_t(uint32_t(acc[size_t(oc - b)]) + uint32_t(q.offset));  // wraps back to the true sum
          const int32_t v = requantize(a, q.m, z_out_, qmin_, qmax_);
          out[r * OC_ + oc] = oq.u8 ? uint8_t(v) : uint8_t(int8_t(v));
        }
      }
    });
    return y;
  }

  std::vector<uint8_t> xu(size_t(rows * K_));
  qs8::to_u8(static_cast<const uint8_t*>(xc.raw_data()), x_dtype_ == DType::i8, rows * K_, xu.data());
  const int64_t K4 = (K_ + 3) / 4, tiles = (rows + T - 1) / T, blocks = (OC_ + qs8::kMR - 1) / qs8::kMR;
  // Rows of the grid are tiles of T input rows, columns blocks of kMR output channels (see
  // QConv2d::run): with few rows the channel blocks are split too.
  const double cell_macs = double(std::min(T, rows)) * double(std::min(qs8::kMR, OC_)) * double(K_);
  parallel_for_2d(tiles, blocks, Work::macs_i8(cell_macs) + Work::bytes(double(K_ * T) / double(blocks)),
                  [&](int64_t i0, int64_t i1, int64_t blk0, int64_t blk1) {
    std::vector<uint8_t> tile_store;
    uint8_t* const tile = qs8::aligned_tile(tile_store, K4 * T * 4);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t r0 = i * T, count = std::min(T, rows - r0);
      qs8::pack_rows_tile(xu.data(), rows, K_, r0, T, tile);
      for (int64_t blk = blk0; blk < blk1; ++blk) {
        const int64_t oc0 = blk * qs8::kMR;
        // out[r][oc]: the tile's rows are output channels, its columns input rows.
        qs8::qu8s8_gemm_tile(packed_.data() + blk * K4 * qs8::kMR * 4, tile, K4, T,
                             std::min(qs8::kMR, OC_ - oc0), count, rq_.data() + oc0, oq, out + r0 * OC_ + oc0, 1,
                             OC_);
      }
    }
  });
  return y;
}

}  // namespace finch::quant::kernels
