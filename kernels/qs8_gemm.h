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

#include "kernels/requant.h"

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

// A residual add fused into a tile's epilogue (QConv2d::run_add): each code the tile computes
// is added to the residual code at the same offset, reference::qadd's f32 rule (docs/
// quantization.md §7), and only the sum is stored. r_delta: the residual's address minus the
// output's (the residual of out + i is at out + i + r_delta), so one value serves every tile.
// The conv's codes (OutQuant) are the add's operand at (s_conv, z_conv = OutQuant::z_out);
// qmin/qmax/z_out/y_u8 are the add's output. f32 addition is commutative, so which operand
// the conv was in the program does not matter.
struct TileAdd {
  intptr_t r_delta = 0;
  bool r_u8 = false, y_u8 = false;
  float s_conv = 1, s_r = 1, s_out = 1;
  int32_t z_conv = 0, z_r = 0, z_out = 0, qmin = -128, qmax = 127;
  const uint8_t* r_at(const uint8_t* out) const {
    return reinterpret_cast<const uint8_t*>(reinterpret_cast<uintptr_t>(out) + uintptr_t(r_delta));
  }
};
// The add of `a` over codes already stored: rows × count codes at out + m·row_stride (the conv's
// codes, u8 where conv_u8), in place (qs8_add_range per row). The fallback of the tiles above.
void tile_add_rows(const TileAdd& a, bool conv_u8, uint8_t* out, int64_t row_stride, int64_t rows, int64_t count);
// True where the tiles do the add in their register epilogue (AVX-512 VNNI); elsewhere a tile
// given an add stores its codes and then adds each of its rows in place (qs8_add_range).
bool tile_add_in_registers();

// Pixels per activation tile of the current target (a multiple of its vector length); on NEON
// it depends on cpu_has_arm_dotprod(), so ask it per run.
int64_t tile_pixels();
// The micro-kernel the current target runs: "vnni" (vpdpbusd), "sdot" (ARMv8.2 dot product),
// "i16" (the portable i16-product path), "scalar". Tests check it against the CPU.
const char* gemm_kernel_name();

// out[m][t] for m < rows (<= kMR), t < count (<= T): the product of one packed weight block
// w [K4][MR][4] and one activation tile x [K4][T][4], requantized with q[m]. Codes are stored
// as bytes at out + m·row_stride + t·col_stride.
// With `add` (col_stride 1 only): the fused residual add above.
void qu8s8_gemm_tile(const int8_t* w, const uint8_t* x, int64_t K4, int64_t T, int64_t rows, int64_t count,
                     const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride, int64_t col_stride,
                     const TileAdd* add = nullptr);

// The narrow tile, for pixel tiles of at most narrow_tile_pixels() pixels (16 on AVX-512 VNNI;
// 0 where the target has none, and then this must not be called): x [K4][16][4] against the
// packed weight block at w and, for rows > kMR, the next one (w + K4·kMR·4), rows <= 2·kMR,
// requantized as qu8s8_gemm_tile with col_stride 1. A 4×4 plane (16 pixels) would otherwise
// run the full tile with half of its pixels padding.
int64_t narrow_tile_pixels();
void qu8s8_gemm_tile_narrow(const int8_t* w, const uint8_t* x, int64_t K4, int64_t rows, int64_t count,
                            const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride,
                            const TileAdd* add = nullptr);

// Indirect tiles: no packed activation tile. Step k4 (< K4) reads the words of the tile's pixels
// 0..T−1 (T = tile_pixels(), or 16 for the narrow form) at x + off[k4] + 4·t: 4 channels of one
// pixel per word, as in a packed tile, but in place (QConv2d's 4-channel interleaved planes).
// Every pixel's word is read, also for t >= count (their sums are dropped), so the bytes up to
// x + off[k4] + 4·T must be readable. Only where indirect_gemm() (AVX-512 VNNI); otherwise
// callers pack tiles. The rest as qu8s8_gemm_tile (col_stride 1) and qu8s8_gemm_tile_narrow.
// With `seg` (not null) the codes skip the virtual grid's extra columns instead: pixel t of
// segment s (lo[s] <= t < hi[s]) of row m goes to out + m·row_stride + off[s] + t, nothing else
// is stored (QConv2d writes its output directly, without a compaction pass). `add` (only
// without `seg`): the fused residual add, as qu8s8_gemm_tile.
struct TileSegments {
  static constexpr int kMax = 8;
  int n = 0;
  int64_t off[kMax];
  int32_t lo[kMax], hi[kMax];
};
// The segments of tile pixels q0 .. q0+count−1 of a virtual grid [..][Wq] whose columns below
// OW are kept, for an output [..][OW] at out: false where they would exceed kMax (Wq < 8).
bool tile_segments(int64_t q0, int64_t count, int64_t Wq, int64_t OW, TileSegments* seg);
bool indirect_gemm();
void qu8s8_gemm_tile_indirect(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4, int64_t rows,
                              int64_t count, const RowQuant* q, const OutQuant& o, uint8_t* out, int64_t row_stride,
                              const TileSegments* seg = nullptr, const TileAdd* add = nullptr);
void qu8s8_gemm_tile_indirect_narrow(const int8_t* w, const uint8_t* x, const int64_t* off, int64_t K4,
                                     int64_t rows, int64_t count, const RowQuant* q, const OutQuant& o, uint8_t* out,
                                     int64_t row_stride, const TileSegments* seg = nullptr,
                                     const TileAdd* add = nullptr);

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

// Convolutions run as a GEMM over a "virtual" pixel grid [OH][Wq] (only ow < OW is kept):
// the input planes, padded and split into stride phases, are laid out so that every im2col row
// of a pixel tile is one contiguous byte slice, and a tile packs by interleaving K slices.
//   phase plane (c, a, b) = padded plane c at rows a, a + sh, .. and columns b, b + sw, ..
//   dst [planes][sh][sw][Hq][Wq], Hq = ceil((H + 2ph) / sh), Wq = ceil((W + 2pw) / sw)
// Tap (c, kh, kw) of virtual pixel q = oh·Wq + ow then reads phase (c, kh·dh % sh, kw·dw % sw)
// at q + (kh·dh / sh)·Wq + kw·dw / sw (conv_tap_offsets), and every read of a virtual pixel
// q < (OH − 1)·Wq + OW stays inside its phase plane. Stride 1 makes the phase plane the padded
// plane. Bytes are the input's XOR `flip` (0x80 turns i8 into u8), padding and the unused
// phase corners are `pad`: the zero point in the same code form, so that padded taps cancel
// against the weight-sum correction once the packing has flipped both (QConv2d passes flip 0
// and the raw zero point, and flips in pack_offset_tile).
struct PhaseGeom {
  int64_t H, W, ph, pw, sh, sw, Hq, Wq;
};
PhaseGeom phase_geom(int64_t H, int64_t W, int64_t ph, int64_t pw, int64_t sh, int64_t sw);
// Only the phases (a, b) whose bit a·sw + b is set in `used` are written (a 1×1 stride-2 conv
// reads one of four); phases past the 32nd are always written. Rows r0 .. r1−1 of every phase
// plane only (r1 < 0: to Hq), nothing else: QConv2d's threads each fill the rows their own
// tiles read (kernels/own_rows.h).
void phase_planes(const uint8_t* x, int64_t planes, const PhaseGeom& g, uint32_t used, uint8_t pad, uint8_t flip,
                  uint8_t* dst, int64_t r0 = 0, int64_t r1 = -1);
// off[k] for k = (c·KH + kh)·KW + kw < Cg·KH·KW: where tap k of virtual pixel 0 sits in the
// phase planes of one group.
std::vector<int64_t> conv_tap_offsets(const PhaseGeom& g, int64_t Cg, int64_t KH, int64_t KW, int64_t dh, int64_t dw);
// phase_planes in 4-channel words: x [channels][H][W] (channels <= 4) -> dst [phases·Hq·Wq][4],
// byte j of a word from channel j, `pad` where the plane is padding; bytes j >= channels are 0
// or `pad` (the weights of absent channels are 0).
void phase_planes4(const uint8_t* x, int64_t channels, const PhaseGeom& g, uint32_t used, uint8_t pad,
                   uint8_t flip, uint8_t* dst, int64_t r0 = 0, int64_t r1 = -1);
// The `used` mask of phase_planes for these taps.
uint32_t conv_used_phases(const PhaseGeom& g, int64_t KH, int64_t KW, int64_t dh, int64_t dw);
// One activation tile [K4][T][4] of virtual pixels q0 .. q0+count−1 (count <= T): pixel t's
// byte k is base[off[k] + q0 + t] ^ flip, k >= K reads 0; pixels t >= count are left as they
// are (their sums are never stored).
void pack_offset_tile(const uint8_t* base, const int64_t* off, int64_t K, int64_t q0, int64_t T, int64_t count,
                      uint8_t flip, uint8_t* dst);
// One activation tile of linear rows r0 .. r0+T−1 of x u8 [rows][K].
void pack_rows_tile(const uint8_t* x, int64_t rows, int64_t K, int64_t r0, int64_t T, uint8_t* dst);

// A 64-byte aligned scratch of `bytes` inside buf (resized as needed): activation tiles there
// never split a cache line on a vector load (about 3% of the 512³ GEMM).
inline uint8_t* aligned_tile(std::vector<uint8_t>& buf, int64_t bytes) {
  buf.resize(size_t(bytes) + 64);
  const auto mis = reinterpret_cast<uintptr_t>(buf.data()) % 64;
  return buf.data() + (mis ? 64 - mis : 0);
}

// The u8 form of i8/u8 codes (i8 codes XOR 0x80 = code + 128), from a contiguous buffer.
void to_u8(const void* src, bool is_i8, int64_t n, uint8_t* dst);

}  // namespace finch::quant::kernels::qs8
