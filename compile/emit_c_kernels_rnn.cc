// The C text of the series-program kernels `finch emit-c` writes (compile/emit_c.h): the static
// int8 LSTM and GRU (qlstm, qgru) as kernels/reference_rnn.cc computes them, line for line, and
// the shape ops around them (permute, cat, select as block copies, add_scalar on the lengths).
//
// The recurrent kernels run each sample's valid steps in order (reverse: the valid steps from the
// last one back, which is what the runtime's reverse_steps → forward cell → reverse_steps gives),
// padded steps writing z_h, with h starting at z_h and c at 0; samples are independent, so
// sample-major order gives the runtime's codes. Every multiplier is derived at emit time by the
// runtime's own functions (gate_multipliers, q30_out_multiplier, quantize_multipliers) and the
// sigmoid/tanh tables are kernels::q16_sigmoid_table()/q16_tanh_table() written out, so nothing
// here computes in floating point.
#include <string>
#include <vector>

#include "compile/emit_c_detail.h"

namespace finch::compile::emit_c_detail {

namespace {

// What the LSTM and GRU share: one int8 row of a gate matrix against x (kernels/reference_rnn.cc
// qmatrix_acc_reference: an int64 sum reduced modulo 2^32), the Q3.12 gate requantization, the
// saturating int16 sum, and a cell's parameters.
const char* kCommon = R"(/* kernels/reference_rnn.cc qmatrix_acc_reference: bias + sum (x - zx) * w, the int64 sum reduced
   modulo 2^32. Summed in uint32 (defined wrap-around; each term fits int32), which is that sum
   modulo 2^32 in any order, then read as int32 (two's complement, as every compiler finch
   targets converts): the same accumulator, in 32-bit lanes a compiler vectorizes. */
static int32_t finch_qrow(const int8_t* w, int32_t cols, const int8_t* x, int32_t zx, int32_t bias) {
  uint32_t acc = (uint32_t)bias;
  int32_t k;
  for (k = 0; k < cols; ++k) acc += (uint32_t)(((int32_t)x[k] - zx) * w[k]);
  return (int32_t)acc;
}

/* kernels/qs8_rnn.h q16_gate (requantize to Q3.12, z 0) and q16_add_sat. */
static int16_t finch_q16_gate(int32_t acc, int32_t m, int32_t n) {
  return (int16_t)finch_requantize(acc, m, n, 0, -32768, 32767);
}
static int16_t finch_q16_add_sat(int16_t a, int16_t b) {
  const int32_t s = (int32_t)a + b;
  return (int16_t)(s < -32768 ? -32768 : s > 32767 ? 32767 : s);
}

/* One direction of a static int8 LSTM (qlstm) or GRU (qgru). x [T, B, IN] or [B, T, IN]
   (batch_first), y likewise with HO features, h_n [1, B, HO]. G gate rows: 4H (LSTM), 3H (GRU).
   m_* / s_*: each row's fixed-point multiplier and total shift. sig / tnh: the Q3.12 -> Q0.15
   tables (kernels/q16_act.h), indexed by (uint16_t)q. */
typedef struct {
  int32_t T, B, IN, H, HO, batch_first, reverse, k_cell, zx, zh, zm;
  const int8_t* w_ih; const int32_t* b_ih; const int32_t* m_ih; const int32_t* s_ih;
  const int8_t* w_hh; const int32_t* b_hh; const int32_t* m_hh; const int32_t* s_hh;
  const int8_t* w_hr; const int32_t* m_hr; const int32_t* s_hr;
  int32_t m_out, s_out;
  const int16_t* sig; const int16_t* tnh;
} finch_qrnn_t;

/* The lengths (null: every sample T steps) each in 1..T, as the runtime checks them. */
static int finch_qrnn_lengths_ok(const int64_t* lengths, int32_t T, int32_t B) {
  int32_t b;
  if (!lengths) return 1;
  for (b = 0; b < B; ++b)
    if (lengths[b] < 1 || lengths[b] > T) return 0;
  return 1;
}

/* Row offset of step t of sample b. */
static int64_t finch_qrnn_at(const finch_qrnn_t* p, int32_t b, int32_t t) {
  return p->batch_first ? (int64_t)b * p->T + t : (int64_t)t * p->B + b;
}

)";

const char* kQLstm = R"(/* qlstm (kernels/reference_rnn.cc lstm_step, qlstm_gates_reference; kernels/qs8_lstm.h): gates i, f, g, o
   in Q3.12, activated to Q0.15 by the tables, the int16 cell at 2^-k_cell, o * tanh(c') to h's
   codes (or, with a projection w_hr [P, H], to m's codes and then projected to h's). Returns 1
   when a length is outside 1..T, else 0. s16: 5H int16, s8: HO + H int8 of scratch. */
static int finch_qlstm(const int8_t* x, const int64_t* lengths, int8_t* y, int8_t* hn, const finch_qrnn_t* p,
                       int16_t* s16, int8_t* s8) {
  const int32_t T = p->T, B = p->B, IN = p->IN, H = p->H, HO = p->HO, G = 4 * H, k = p->k_cell;
  int16_t* pre = s16;
  int16_t* c = s16 + G;
  int8_t* h = s8;
  int8_t* m = s8 + HO;
  int8_t* out = p->w_hr ? m : h;
  const int32_t zo = p->w_hr ? p->zm : p->zh;
  int32_t b, s, j, r;
  if (!finch_qrnn_lengths_ok(lengths, T, B)) return 1;
  for (b = 0; b < B; ++b) {
    const int32_t L = lengths ? (int32_t)lengths[b] : T;
    for (j = 0; j < HO; ++j) h[j] = (int8_t)p->zh;
    for (j = 0; j < H; ++j) c[j] = 0;
    for (s = 0; s < T; ++s) {
      const int32_t t = s >= L ? s : p->reverse ? L - 1 - s : s;
      int8_t* yt = y + finch_qrnn_at(p, b, t) * HO;
      const int8_t* xt = x + finch_qrnn_at(p, b, t) * IN;
      if (s >= L) {
        for (j = 0; j < HO; ++j) yt[j] = (int8_t)p->zh;
        continue;
      }
      for (r = 0; r < G; ++r)
        pre[r] = finch_q16_add_sat(
            finch_q16_gate(finch_qrow(p->w_ih + (int64_t)r * IN, IN, xt, p->zx, p->b_ih ? p->b_ih[r] : 0), p->m_ih[r], p->s_ih[r]),
            finch_q16_gate(finch_qrow(p->w_hh + (int64_t)r * HO, HO, h, p->zh, p->b_hh ? p->b_hh[r] : 0), p->m_hh[r], p->s_hh[r]));
      for (j = 0; j < H; ++j) {
        const int16_t gi = p->sig[(uint16_t)pre[j]], gf = p->sig[(uint16_t)pre[H + j]];
        const int16_t gg = p->tnh[(uint16_t)pre[2 * H + j]], go = p->sig[(uint16_t)pre[3 * H + j]];
        /* qlstm_cell_update: rounding_shift(f*c*2^15 + i*g*2^k, 30), saturated to int16 */
        const int64_t v = (int64_t)((int32_t)gf * c[j]) * 32768 + (int64_t)((int32_t)gi * gg) * ((int64_t)1 << k);
        int64_t cn = finch_rounding_shift(v, 30), q12;
        cn = cn < -32768 ? -32768 : cn > 32767 ? 32767 : cn;
        c[j] = (int16_t)cn;
        /* qlstm_cell_to_q12: the cell at 2^-k as Q3.12 */
        q12 = k >= 12 ? finch_rounding_shift(cn, k - 12) : cn * ((int64_t)1 << (12 - k));
        q12 = q12 < -32768 ? -32768 : q12 > 32767 ? 32767 : q12;
        out[j] = (int8_t)finch_requantize((int32_t)go * p->tnh[(uint16_t)(int16_t)q12], p->m_out, p->s_out, zo, -128, 127);
      }
      if (p->w_hr)
        for (j = 0; j < HO; ++j)
          h[j] = (int8_t)finch_requantize(finch_qrow(p->w_hr + (int64_t)j * H, H, m, p->zm, 0), p->m_hr[j], p->s_hr[j],
                                          p->zh, -128, 127);
      for (j = 0; j < HO; ++j) yt[j] = h[j];
    }
    for (j = 0; j < HO; ++j) hn[(int64_t)b * HO + j] = h[j];
  }
  return 0;
}

)";

const char* kQGru = R"(/* qgru (kernels/reference_rnn.cc gru_step, qgru_gates_reference; kernels/qs8_gru.h): gates r, z, n;
   gx and gh kept apart (n = tanh(gx_n + r * gh_n) in fixed point), h' = (1 - z) n + z h with the
   multiplier (m_out, s_out) of 2^-30 / s_h. Returns 1 when a length is outside 1..T, else 0.
   s16: 6H int16, s8: H int8 of scratch. */
static int finch_qgru(const int8_t* x, const int64_t* lengths, int8_t* y, int8_t* hn, const finch_qrnn_t* p,
                      int16_t* s16, int8_t* s8) {
  const int32_t T = p->T, B = p->B, IN = p->IN, H = p->H, G = 3 * H, N = p->s_out, zh = p->zh;
  int16_t* gx = s16;
  int16_t* gh = s16 + G;
  int8_t* h = s8;
  int32_t b, s, j, r;
  if (!finch_qrnn_lengths_ok(lengths, T, B)) return 1;
  for (b = 0; b < B; ++b) {
    const int32_t L = lengths ? (int32_t)lengths[b] : T;
    for (j = 0; j < H; ++j) h[j] = (int8_t)zh;
    for (s = 0; s < T; ++s) {
      const int32_t t = s >= L ? s : p->reverse ? L - 1 - s : s;
      int8_t* yt = y + finch_qrnn_at(p, b, t) * H;
      const int8_t* xt = x + finch_qrnn_at(p, b, t) * IN;
      if (s >= L) {
        for (j = 0; j < H; ++j) yt[j] = (int8_t)zh;
        continue;
      }
      for (r = 0; r < G; ++r) {
        gx[r] = finch_q16_gate(finch_qrow(p->w_ih + (int64_t)r * IN, IN, xt, p->zx, p->b_ih ? p->b_ih[r] : 0), p->m_ih[r], p->s_ih[r]);
        gh[r] = finch_q16_gate(finch_qrow(p->w_hh + (int64_t)r * H, H, h, zh, p->b_hh ? p->b_hh[r] : 0), p->m_hh[r], p->s_hh[r]);
      }
      for (j = 0; j < H; ++j) {
        const int16_t gr = p->sig[(uint16_t)finch_q16_add_sat(gx[j], gh[j])];
        const int16_t gz = p->sig[(uint16_t)finch_q16_add_sat(gx[H + j], gh[H + j])];
        /* qgru_n_preact: rounding_shift(gx_n * 2^15 + r * gh_n, 15), saturated */
        int64_t np = finch_rounding_shift((int64_t)gx[2 * H + j] * 32768 + (int64_t)((int32_t)gr * gh[2 * H + j]), 15), v;
        int16_t gn;
        np = np < -32768 ? -32768 : np > 32767 ? 32767 : np;
        gn = p->tnh[(uint16_t)(int16_t)np];
        /* qgru_h_update */
        v = (int64_t)((32768 - (int32_t)gz) * (int32_t)gn) * p->m_out +
            (int64_t)((int32_t)gz * ((int32_t)h[j] - zh)) * ((int64_t)1 << (N - 15));
        v = finch_rounding_shift(v, N);
        v = v < -128 - (int64_t)zh ? -128 - (int64_t)zh : v > 127 - (int64_t)zh ? 127 - (int64_t)zh : v;
        h[j] = (int8_t)(v + zh);
      }
      for (j = 0; j < H; ++j) yt[j] = h[j];
    }
    for (j = 0; j < H; ++j) hn[(int64_t)b * H + j] = h[j];
  }
  return 0;
}

)";

const char* kPermute = R"(/* permute (x.permute(dims).contiguous()), any element size: output dim k walks the input with
   stride[k] elements over size[k] entries (at most 8 dims). */
static void finch_permute(const void* xv, void* yv, int32_t esize, int32_t nd, const int32_t* size, const int32_t* stride) {
  const unsigned char* x = (const unsigned char*)xv;
  unsigned char* y = (unsigned char*)yv;
  int32_t idx[8] = {0, 0, 0, 0, 0, 0, 0, 0}, k;
  int64_t total = 1, i, off = 0;
  for (k = 0; k < nd; ++k) total *= size[k];
  for (i = 0; i < total; ++i) {
    memcpy(y + i * esize, x + off * esize, (size_t)esize);
    for (k = nd - 1; k >= 0; --k) {
      off += stride[k];
      if (++idx[k] < size[k]) break;
      off -= (int64_t)stride[k] * size[k];
      idx[k] = 0;
    }
  }
}

)";

const char* kCopyBlocks = R"(/* count blocks of `bytes` bytes from src (stride src_stride) to dst (stride dst_stride): cat writes
   each input's blocks into its slot of the output, select reads one index's blocks. */
static void finch_copy_blocks(void* dst, int64_t dst_stride, const void* src, int64_t src_stride, int64_t bytes,
                              int64_t count) {
  int64_t i;
  for (i = 0; i < count; ++i)
    memcpy((unsigned char*)dst + i * dst_stride, (const unsigned char*)src + i * src_stride, (size_t)bytes);
}

)";

const char* kAddScalarI64 = R"(/* add_scalar on integer lengths (ops/elementwise.cc): y = x + s, exactly; 1 when a sum leaves
   [-9e15, 9e15] (the runtime refuses it), else 0. */
static int finch_add_scalar_i64(const int64_t* x, int64_t* y, int32_t n, int64_t s) {
  const int64_t lim = (int64_t)9000000000000000LL;
  int32_t i;
  for (i = 0; i < n; ++i) {
    if (x[i] > lim - s || x[i] < -lim - s) return 1;
    y[i] = x[i] + s;
  }
  return 0;
}

)";

}  // namespace

std::string rnn_kernel_text(const std::string& key, std::vector<std::string>& deps) {
  if (key == "qrnn_common") return deps = {"requantize"}, kCommon;
  if (key == "qlstm") return deps = {"qrnn_common"}, kQLstm;
  if (key == "qgru") return deps = {"qrnn_common"}, kQGru;
  if (key == "permute") return deps = {}, kPermute;
  if (key == "copy_blocks") return deps = {}, kCopyBlocks;
  if (key == "add_scalar_i64") return deps = {}, kAddScalarI64;
  return "";
}

}  // namespace finch::compile::emit_c_detail
