// The C text of the text-program and dynamic int8 kernels `finch emit-c` writes (compile/emit_c.h):
// qembedding (int8 rows, one scale per row), dq_linear, dq_lstm (with the projection) and dq_gru,
// as the runtime computes them, operation for operation:
//
// - dq_linear (kernels/qs8_dq_linear.cc, reference::dq_linear): the row's (or the tensor's)
//   min/max, kernels/qparams.cc's int8 affine qparams of it in double (scale = f32((hi − lo)/255),
//   at least kMinScale; zero point −128 − nearbyint(lo / scale)), quantize() in f32, the centered
//   int8 dot product in wrapping int32, then fma(float(acc), s_x·s_w[oc], b[oc]) (one rounding:
//   C99's fmaf) and the activation;
// - the f32 gate passes of dq_lstm / dq_gru (ops/lstm_hwy.cc, ops/gru_hwy.cc) with Highway 1.0.3's
//   Exp and Tanh (hwy/contrib/math/math-inl.h) written out for one lane: the same range reduction,
//   polynomial, exponent bit tricks and MulAdd order, MulAdd being fmaf — what the runtime's
//   targets with a native FMA (AVX2, AVX-512, NEON, SVE) compute. The constants are written from
//   the same float conversions Highway makes (static_cast<float> of its double literals).
#include <cmath>
#include <string>
#include <vector>

#include "compile/emit_c_detail.h"
#include "kernels/qparams.h"

namespace finch::compile::emit_c_detail {

namespace {

const char* kQEmbedding = R"(/* qembedding (runtime/quant_rnn_ops.cc): y[i, :] = (float)w[id, :] * s[id], int8 rows [V, E] with one scale per
   row. Returns 1 (y unspecified) when an id is outside 0..V-1, as the runtime refuses it, else 0. */
static int @N(const @X* ids, float* y, int32_t n, const int8_t* w, const float* s, int32_t V, int32_t E) {
  int32_t i, e;
  for (i = 0; i < n; ++i) {
    const int64_t id = (int64_t)ids[i];
    if (id < 0 || id >= V) return 1;
    for (e = 0; e < E; ++e) y[(int64_t)i * E + e] = (float)w[id * E + e] * s[id];
  }
  return 0;
}

)";

const char* kDqCommon = R"(/* Dynamic quantization of activations (kernels/qs8_dq_linear.cc): the smallest and largest of n
   values (1 when one is not finite: the runtime refuses those, else 0), and kernels/qparams.cc's
   int8 affine full-range qparams of [lo, hi] widened to include 0, computed in double as there. */
static int finch_dq_minmax(const float* x, int64_t n, float* lo, float* hi) {
  float l = x[0], h = x[0];
  int64_t i;
  for (i = 0; i < n; ++i) {
    if (!isfinite(x[i])) return 1;
    l = x[i] < l ? x[i] : l;
    h = h < x[i] ? x[i] : h;
  }
  *lo = l, *hi = h;
  return 0;
}
static void finch_dq_qparams(float lo, float hi, float* s, int32_t* z) {
  const double l = (double)lo < 0.0 ? (double)lo : 0.0, h = (double)hi > 0.0 ? (double)hi : 0.0;
  double scale = (double)(float)((h - l) / 255.0), zp;
  if (scale < (double)@MIN_SCALE) scale = (double)@MIN_SCALE;
  zp = -128.0 - nearbyint(l / scale);
  zp = zp < -128.0 ? -128.0 : zp > 127.0 ? 127.0 : zp;
  *s = (float)scale, *z = (int32_t)zp;
}

/* rows x [rows, K] against w [OC, K] (int8, zero point 0, one scale per row s_w) with the codes
   q [rows, K] at (s_x, z_x): y = fma(float(acc), s_x * s_w[oc], b[oc]), acc the centered dot
   product in wrapping int32 (summed in uint32: the same value in any order); act 1 relu, 2 relu6. */
static void finch_dq_dot(const int8_t* q, int32_t rows, int32_t K, float s_x, int32_t z_x, const int8_t* w,
                         const float* s_w, const float* b, int32_t OC, int act, float* y) {
  int32_t r, oc, k;
  for (r = 0; r < rows; ++r)
    for (oc = 0; oc < OC; ++oc) {
      const int8_t* qr = q + (int64_t)r * K;
      const int8_t* wr = w + (int64_t)oc * K;
      uint32_t acc = 0;
      float v;
      for (k = 0; k < K; ++k) acc += (uint32_t)(((int32_t)qr[k] - z_x) * wr[k]);
      v = fmaf((float)(int32_t)acc, s_x * s_w[oc], b ? b[oc] : 0.0f);
      if (act >= 1) v = v < 0.0f ? 0.0f : v;
      if (act == 2) v = 6.0f < v ? 6.0f : v;
      y[(int64_t)r * OC + oc] = v;
    }
}

/* One row x [K] quantized from its own min/max, then finch_dq_dot: QDynamicLinear::run_row. q: K
   int8 of scratch. Returns 1 when x holds a value that is not finite, else 0. */
static int finch_dq_row(const float* x, int32_t K, const int8_t* w, const float* s_w, const float* b, int32_t OC,
                        int8_t* q, float* y) {
  float lo, hi, s;
  int32_t z;
  if (finch_dq_minmax(x, K, &lo, &hi)) return 1;
  finch_dq_qparams(lo, hi, &s, &z);
  finch_quantize_i8(x, q, K, s, (float)z, -128.0f, 127.0f);
  finch_dq_dot(q, 1, K, s, z, w, s_w, b, OC, 0, y);
  return 0;
}

)";

const char* kDqLinear = R"(/* dq_linear (runtime/quant_ops.cc; kernels/qs8_dq_linear.cc): x [rows, K] quantized per call from its
   min/max (per_row: each row from its own), then finch_dq_dot. q: rows * K int8 of scratch.
   Returns 1 when x holds a value that is not finite (the runtime refuses it), else 0. */
static int finch_dq_linear(const float* x, float* y, int32_t rows, int32_t K, int32_t OC, const int8_t* w,
                           const float* s_w, const float* b, int per_row, int act, int8_t* q) {
  int32_t r, n = per_row ? 1 : rows;
  float lo, hi, s;
  int32_t z;
  for (r = 0; r < rows; r += n) {
    const float* xr = x + (int64_t)r * K;
    if (finch_dq_minmax(xr, (int64_t)n * K, &lo, &hi)) return 1;
    finch_dq_qparams(lo, hi, &s, &z);
    finch_quantize_i8(xr, q, n * K, s, (float)z, -128.0f, 127.0f);
    finch_dq_dot(q, n, K, s, z, w, s_w, b, OC, act, y + (int64_t)r * OC);
  }
  return 0;
}

)";

// Highway's Exp, Expm1 and Tanh (hwy/contrib/math/math-inl.h, 1.0.3) and the gates' σ for one
// lane; @-names are the constants, written by dq_kernel_text from the same conversions.
const char* kHwyMath = R"(/* Highway 1.0.3's Exp / Expm1 / Tanh (hwy/contrib/math/math-inl.h) for one f32 lane, MulAdd as fmaf, and
   the sigmoid of ops/lstm_hwy.cc: what the runtime's f32 gate passes compute on a target with FMA. */
static float finch_hwy_pow2i(int32_t e) {
  const uint32_t u = (uint32_t)(e + 127) << 23;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}
static float finch_hwy_load_exp(float x, int32_t e) {
  const int32_t y = e < 0 ? -((1 - e) / 2) : e / 2; /* e >> 1, arithmetic */
  return (x * finch_hwy_pow2i(y)) * finch_hwy_pow2i(e - y);
}
static float finch_hwy_exp_poly(float x) {
  const float x2 = x * x, x4 = x2 * x2;
  const float p = fmaf(x4, fmaf(@K5, x, @K4), fmaf(x2, fmaf(@K3, x, @K2), fmaf(@K1, x, @K0)));
  return fmaf(p, x * x, x);
}
/* q = (int32)(x / ln 2 + (x < 0 ? -0.5 : 0.5)), truncated; x reduced by q ln 2 in two parts. */
static int32_t finch_hwy_exp_q(float x) { return (int32_t)fmaf(x, @ONE_OVER_LN2, copysignf(0.5f, x)); }
static float finch_hwy_reduce(float x, int32_t q) {
  const float qf = (float)q;
  return fmaf(qf, @LN2_PART1, fmaf(qf, @LN2_PART0, x));
}
static float finch_hwy_exp(float x) {
  int32_t q;
  if (!(x >= -104.0f)) return 0.0f;
  q = finch_hwy_exp_q(x);
  return finch_hwy_load_exp(finch_hwy_exp_poly(finch_hwy_reduce(x, q)) + 1.0f, q);
}
static float finch_hwy_expm1(float x) {
  int32_t q;
  float y;
  if (x < -104.0f) return -1.0f;
  q = finch_hwy_exp_q(x);
  y = finch_hwy_exp_poly(finch_hwy_reduce(x, q));
  return fabsf(x) < @LN2_OVER_2 ? y : finch_hwy_load_exp(y + 1.0f, q) - 1.0f;
}
static float finch_hwy_tanh(float x) {
  const float a = fabsf(x);
  float z = 1.0f;
  if (!(a > @TANH_LIMIT)) {
    const float y = finch_hwy_expm1(a * 2.0f);
    z = y / (y + 2.0f);
  }
  return copysignf(z, x); /* z >= +0: Highway's Xor with the sign bit */
}
/* ops/lstm_hwy.cc Sigmoid: 1 / (1 + e^-x), x clamped to [-88, 88]. */
static float finch_hwy_sigmoid(float x) {
  x = x > -88.0f ? x : -88.0f;
  x = x < 88.0f ? x : 88.0f;
  return 1.0f / (1.0f + finch_hwy_exp(-x));
}

)";

const char* kDqRnn = R"(/* One dq_lstm or dq_gru node (runtime/quant_rnn_ops.cc; kernels/qs8_dq_lstm.cc, qs8_dq_gru.cc), both
   directions: x [T, B, IN] (or [B, T, IN], batch_first), y likewise with D * HO features (direction d
   at d * HO), h_n [D, B, HO] and c_n [D, B, H] (LSTM; either may be null:
   not read after). Each sample runs its valid steps
   (reverse: from the last one back) from h = c = 0; padded steps leave y 0. b_ih is b_ih + b_hh
   (summed in f32 at emit time) for the LSTM, b_ih for the GRU; b_hh the GRU's b_hh (LSTM: null).
   Scratch f: 10H + HO floats, q: max(IN, H, HO) int8. Returns 1 when a length is outside 1..T,
   3 when a value to quantize is not finite (the runtime refuses both), else 0. */
typedef struct {
  int32_t T, B, IN, H, HO, D, batch_first, lstm;
  const int8_t* w_ih[2]; const float* s_ih[2]; const float* b_ih[2];
  const int8_t* w_hh[2]; const float* s_hh[2]; const float* b_hh[2];
  const int8_t* w_hr[2]; const float* s_hr[2];
} finch_dq_rnn_t;

static int finch_dq_rnn(const float* x, const int64_t* lengths, float* y, float* hn, float* cn, const finch_dq_rnn_t* p,
                        float* f, int8_t* q) {
  const int32_t T = p->T, B = p->B, IN = p->IN, H = p->H, HO = p->HO, D = p->D, G = (p->lstm ? 4 : 3) * H;
  float* gx = f;
  float* gh = f + 4 * H;
  float* m = f + 8 * H;
  float* c = f + 9 * H;
  float* h = f + 10 * H;
  int32_t d, b, s, j;
  for (b = 0; b < B; ++b)
    if (lengths && (lengths[b] < 1 || lengths[b] > T)) return 1;
  memset(y, 0, (size_t)T * (size_t)B * (size_t)(D * HO) * sizeof(float));
  for (d = 0; d < D; ++d)
    for (b = 0; b < B; ++b) {
      const int32_t L = lengths ? (int32_t)lengths[b] : T;
      for (j = 0; j < HO; ++j) h[j] = 0.0f;
      for (j = 0; j < H; ++j) c[j] = 0.0f;
      for (s = 0; s < L; ++s) {
        const int32_t t = d == 1 ? L - 1 - s : s;
        const int64_t row = p->batch_first ? (int64_t)b * T + t : (int64_t)t * B + b;
        if (finch_dq_row(x + row * IN, IN, p->w_ih[d], p->s_ih[d], p->b_ih[d], G, q, gx)) return 3;
        if (finch_dq_row(h, HO, p->w_hh[d], p->s_hh[d], p->b_hh[d], G, q, gh)) return 3;
        if (p->lstm) {
          /* QDynamicLstm::step: gates gx + gh, then ops::lstm_gates_forward_f32 */
          for (j = 0; j < G; ++j) gx[j] = gx[j] + gh[j];
          for (j = 0; j < H; ++j) {
            const float gi = finch_hwy_sigmoid(gx[j]), gf = finch_hwy_sigmoid(gx[H + j]);
            const float gg = finch_hwy_tanh(gx[2 * H + j]), go = finch_hwy_sigmoid(gx[3 * H + j]);
            c[j] = fmaf(gf, c[j], gi * gg);
            m[j] = go * finch_hwy_tanh(c[j]);
          }
          if (p->w_hr[d]) {
            if (finch_dq_row(m, H, p->w_hr[d], p->s_hr[d], 0, HO, q, h)) return 3;
          } else {
            for (j = 0; j < H; ++j) h[j] = m[j];
          }
        } else {
          /* QDynamicGru::step: ops::gru_gates_forward_f32 */
          for (j = 0; j < H; ++j) {
            const float r = finch_hwy_sigmoid(gx[j] + gh[j]), z = finch_hwy_sigmoid(gx[H + j] + gh[H + j]);
            const float n = finch_hwy_tanh(fmaf(r, gh[2 * H + j], gx[2 * H + j]));
            h[j] = fmaf(z, h[j] - n, n);
          }
        }
        for (j = 0; j < HO; ++j) y[row * D * HO + (int64_t)d * HO + j] = h[j];
      }
      if (hn)
        for (j = 0; j < HO; ++j) hn[((int64_t)d * B + b) * HO + j] = h[j];
      if (cn)
        for (j = 0; j < H; ++j) cn[((int64_t)d * B + b) * H + j] = c[j];
    }
  return 0;
}

)";

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

}  // namespace

std::string dq_kernel_text(const std::string& key, std::vector<std::string>& deps) {
  if (key == "qembedding_i64" || key == "qembedding_i32") {
    std::string s = kQEmbedding;
    replace_all(s, "@N", "finch_" + key);
    replace_all(s, "@X", key == "qembedding_i64" ? "int64_t" : "int32_t");
    return deps = {}, s;
  }
  if (key == "dq_common") {
    std::string s = kDqCommon;
    replace_all(s, "@MIN_SCALE", float_literal(quant::kMinScale));
    return deps = {"quantize_i8"}, s;
  }
  if (key == "dq_linear") return deps = {"dq_common"}, kDqLinear;
  if (key == "hwy_math") {
    // The constants exactly as Highway converts them: Set(d, float literal) for the polynomial
    // and the ln 2 parts, static_cast<float>(double literal) for the others.
    std::string s = kHwyMath;
    const std::pair<const char*, float> c[] = {
        {"@K0", +0.5f},
        {"@K1", +0.166666671633720397949219f},
        {"@K2", +0.0416664853692054748535156f},
        {"@K3", +0.00833336077630519866943359f},
        {"@K4", +0.00139304355252534151077271f},
        {"@K5", +0.000198527617612853646278381f},
        {"@ONE_OVER_LN2", static_cast<float>(+1.442695040888963407359924681)},
        {"@LN2_PART0", -0.693145751953125f},
        {"@LN2_PART1", -1.428606765330187045e-6f},
        {"@LN2_OVER_2", static_cast<float>(+0.346573590279972654708616)},
        {"@TANH_LIMIT", static_cast<float>(18.714973875)},
    };
    for (const auto& [name, v] : c) replace_all(s, name, float_literal(v));
    return deps = {}, s;
  }
  if (key == "dq_rnn") return deps = {"dq_common", "hwy_math"}, kDqRnn;
  return "";
}

}  // namespace finch::compile::emit_c_detail
