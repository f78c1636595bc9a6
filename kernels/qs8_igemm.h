// The int8 indirect-GEMM conv micro-kernel (qs8_igemm_hwy.cc): output channels in the vector
// lanes, pixels read through an indirection buffer, requantization per lane in registers.
//
// Why a second conv kernel beside qs8_gemm.h's: that one puts pixels in the lanes, so it runs
// over the virtual grid of padded phase planes and rounds each image up to 32-pixel tiles. On
// ResNet-20's planes that computes 864 pixels per 784 real ones at 28×28, 224/196 at 14×14 and
// 64/49 at 7×7. Here a tile is MR = 7 output pixels (7 divides 784, 196 and 49) × 16 or 32
// output channels, each pixel's taps are found through a table of byte offsets (the input row
// of that tap, or a shared padding word), so only real pixels are computed and no padded plane
// is built, whatever the stride, padding or dilation. As XNNPACK's igemm does, but written
// for finch's layouts: the input is 4-channel words in planes (below), the output NCHW codes.
//
// Layouts (bytes):
//   input   u8 [Cg4][S][4] per (image, group): word p of plane c4 holds channels 4·c4 .. +3 of
//           input pixel p (bytes of absent channels are 0); word H·W of each plane is the
//           padding word, the input zero point in all 4 bytes; S = plane words (>= H·W + 1).
//   weights i8 [taps·Cg4][NB][4] per block of NB = 16·nv output channels: k4 = tap·Cg4 + c4,
//           lane j of the block, byte i = channel 4·c4 + i (0 past Cg or past the channels).
//   table   i32 [tiles][taps][MR]: byte offset of pixel i's tap in plane 0 (the padding word's
//           offset where the tap is padding); a tail tile repeats its last real pixel.
// The sums are the same wrapping int32 u8·i8 sums as qs8_gemm.h's, and the requantization is
// RequantRow's n = 32..52 rule, so the codes equal that kernel's and reference::qconv2d's.
#pragma once

#include <cstdint>
#include <vector>

#include "kernels/qs8_gemm.h"

namespace finch::quant::kernels::qs8 {

inline constexpr int64_t kIgemmMR = 7;  // output pixels per micro-tile

// One vector of 16 output channels' requantization constants, per lane (qs8_gemm_vnni-inl.h
// RequantHigh16 has them per row): mul_odd lane 2i = mul of channel 2i + 1; rnd_* the rounding
// term 2^(n−1) + z_out·2^n of the even and odd channels; sh = n − 32.
struct alignas(64) IgemmQuant16 {
  int32_t off[16], mul[16], mul_odd[16], sh[16];
  int64_t rnd_even[8], rnd_odd[8];
};

// True where the current target has the kernel (AVX-512 VNNI); elsewhere QConv2d keeps its
// phase-plane path.
bool igemm_available();
// The in-process A/B of benchmarks (bench_threads --igemm-ab): false makes QConv2d take the
// phase-plane GEMM where it would take the indirect conv (the codes are the same). Process-wide,
// true unless set.
void set_igemm_enabled(bool on);
bool igemm_enabled();
// The kernel's rule holds for these rows: every total shift in 32..52 and |z_out| <= 1023.
bool igemm_rows_ok(const RowQuant* q, int64_t rows, int32_t z_out);
// ceil(rows / 16) vectors of constants (lanes past rows: multiplier 0, shift 32).
std::vector<IgemmQuant16> igemm_quants(const RowQuant* q, int64_t rows, int32_t z_out);
// w i8 [M][Cg][taps] -> ceil(M / NB) blocks in the layout above, NB = 16·nv.
std::vector<int8_t> igemm_pack_weights(const int8_t* w, int64_t M, int64_t Cg, int64_t taps, int64_t nv);

struct IgemmArgs {
  const int8_t* w = nullptr;          // the block's packed weights
  int64_t nv = 1;                     // 16-channel vectors per block: 1 or 2
  const IgemmQuant16* q = nullptr;    // nv vectors of constants
  int64_t rows = 0;                   // the block's real channels (<= 16·nv)
  const uint8_t* x = nullptr;         // plane 0 of the (image, group)
  const int32_t* table = nullptr;     // the indirection table of the input shape
  int64_t taps = 0, Cg4 = 0, plane_bytes = 0;
  int64_t P = 0;                      // output pixels per channel (the output's row stride)
  int32_t qmin = 0, qmax = 0;
  uint8_t* out = nullptr;             // the block's first channel, pixel 0
  const TileAdd* add = nullptr;       // the fused residual add (qs8_gemm.h), or none
};
// Tiles tile0 .. tile1−1 (pixels 7·tile .. , the last one cut at P) of one block. With `add`
// each tile adds the residual's codes to its own in registers before its one byte store.
void qu8s8_igemm_tiles(const IgemmArgs& a, int64_t tile0, int64_t tile1);

}  // namespace finch::quant::kernels::qs8
