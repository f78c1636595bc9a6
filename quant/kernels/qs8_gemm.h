// Internal interface of the int8 GEMM micro-kernels (qs8_gemm_hwy.cc) and their packing
// (qs8_pack.cc), used by the QConv2d / QLinear operators. No vector types here.
//
// Shapes: M rows of the packed weight side (output channels), K reduction length, K4 = ceil(K/4),
// T pixels (or rows of a linear input) per activation tile, MR = kQs8MR weight rows per block.
// Layouts (bytes):
//   weights   i8 [ceil(M/MR)][K4][MR][4]   (rows past M and k past K are 0)
//   act tile  u8 [K4][T][4]                (4 consecutive k of one pixel form one 32-bit lane)
// so one vpdpbusd multiplies 4 u8 activations of each pixel lane by 4 broadcast i8 weights.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "quant/kernels/requant.h"

namespace finch::quant::kernels::qs8 {

inline constexpr int64_t kMR = 8;         // output channels per micro-tile
inline constexpr int64_t kDotAlign = 64;  // GEMV rows are padded to this many bytes

// Requantization of one output channel, folded at construction:
//   acc = raw + offset  (int32, wrapping: raw = Σ x_u8·w, offset = bias − zx_u8·Σw)
//   y   = clamp(z_out + rounding_shift(int64(acc)·multiplier, n), qmin, qmax)
// offset_s8 = offset + 128·Σw (wrapping) replaces offset for a kernel that multiplies the
// activations XOR 0x80 (x_u8 − 128, i8: the ARM sdot kernel, qs8_gemm_neon_dot.h).
struct RowQuant {
  int32_t offset = 0;
  FixedPointMultiplier m;
  int32_t offset_s8 = 0;
};
struct OutQuant {
  int32_t z_out = 0, qmin = 0, qmax = 0;
  bool u8 = false;  // output codes u8 (else i8)
};

// Pixels per activation tile of the current target (a multiple of its vector length); on NEON
// it depends on cpu_has_arm_dotprod(), so ask it per run.
int64_t tile_pixels();
// The micro-kernel the current target runs: "vnni" (vpdpbusd), "sdot" (ARMv8.2 dot product),
// "i16" (the portable i16-product path), "scalar". Tests check it against the CPU.
const char* gemm_kernel_name();

// out[m][t] for m < rows (<= kMR), t < count (<= T): the product of one packed weight block
// w [K4][MR][4] and one activation tile x [K4][T][4], requantized with q[m]. Codes are stored
// as bytes at out + m·row_stride + t·col_stride.
void qu8s8_gemm_tile(const int8_t* w, const uint8_t* x, int64_t K4, int64_t T, int64_t rows, int64_t count,
                     const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, int64_t col_stride);

// acc[i] = Σ_k x[k]·w[i·Kp + k] (raw, wrapping int32) for i < M; Kp a multiple of kDotAlign.
void qu8s8_dot_rows(const uint8_t* x, const int8_t* w, int64_t M, int64_t Kp, int32_t* acc);

// dst [K4][T][4] from K4·4 byte rows: byte j of pixel t's word is rows[4·k4 + j][t] ^ flip for
// t < count; null rows (k >= K) read as 0. The vectorized core of the activation packing.
void interleave4_rows(const uint8_t* const* rows, int64_t K4, int64_t T, int64_t count, uint8_t flip, uint8_t* dst);

// ---- packing (qs8_pack.cc), plain C++ ----
// w: i8 [M][K] row-major -> the packed blocks above.
std::vector<int8_t> pack_weights(const int8_t* w, int64_t M, int64_t K);
// Per-row Σ_k w (exact).
std::vector<int64_t> weight_sums(const int8_t* w, int64_t M, int64_t K);
// RowQuant of each row: offset = bias − zx_u8·Σw wrapped to int32 (and offset_s8).
std::vector<RowQuant> row_quants(const std::vector<int64_t>& sums, const std::vector<int32_t>& bias,
                                 const std::vector<FixedPointMultiplier>& m, int32_t zx_u8);

// Geometry of one convolution group's im2col over an already padded input plane group
// [Cg][H][W]: output [OH][OW], k = (c·KH + kh)·KW + kw, strides sh, sw, dilations dh, dw.
struct ConvGeom {
  int64_t Cg, H, W, KH, KW, OH, OW, sh, sw, dh, dw;
};
// The input planes [planes][H][W] (raw i8/u8 bytes) XOR `flip` (0x80 turns i8 into u8, 0 keeps
// u8), surrounded by ph rows and pw columns of `pad` (zx_u8: padded taps then cancel against the
// weight-sum correction), into dst [planes][H + 2ph][W + 2pw] plus kPadSlack bytes of pad.
inline constexpr int64_t kPadSlack = 64;
void pad_planes(const uint8_t* x, int64_t planes, int64_t H, int64_t W, int64_t ph, int64_t pw, uint8_t pad,
                uint8_t flip, uint8_t* dst);
// One activation tile for pixels p0 .. p0+T−1 (those >= OH·OW are zero, as is k >= K) of a
// padded input (pad_planes first unless the conv has no padding), each byte XOR `flip`. xg must be
// followed by kPadSlack readable bytes unless the conv is 1×1 stride 1. T <= 256.
void pack_conv_tile(const uint8_t* xg, const ConvGeom& g, int64_t p0, int64_t T, uint8_t flip, uint8_t* dst);
// One activation tile of linear rows r0 .. r0+T−1 of x u8 [rows][K].
void pack_rows_tile(const uint8_t* x, int64_t rows, int64_t K, int64_t r0, int64_t T, uint8_t* dst);

// The u8 form of i8/u8 codes (i8 codes XOR 0x80 = code + 128), from a contiguous buffer.
void to_u8(const void* src, bool is_i8, int64_t n, uint8_t* dst);

}  // namespace finch::quant::kernels::qs8
