// The C text of the kernels `finch emit-c` writes (compile/emit_c.h): plain C99 that is also
// valid C++17, one function per op and code dtype combination, only those a program uses.
//
// The integer ones are kernels/reference*.cc line by line, so the emitted program gives the
// runtime's codes bit for bit: centered codes (x − zx)·w summed in int32 (a program the loader
// accepts never reaches the wrap: its accumulator bound max|x − zx|·Σ|w| + |bias| is at most
// INT32_MAX, runtime/verify.cc, so the int32 sum equals the reference's int64 sum reduced modulo
// 2^32), one rounding_shift of the int64 product with the fixed-point multiplier (ties toward
// +infinity), the clamp of kernels/requant.cc; qadd and quantize are the f32 rules of
// docs/quantization.md §7 (one IEEE operation per step, nearbyint = round half to even). The
// multipliers are computed at emit time (quantize_multiplier) and stored as tables, so the C
// side never touches a double. Float pools sum in the runtime's order (rows, then columns, from
// 0.0f) and divide once, so they are exact too; float conv2d/linear/add/softmax sum in another
// order than the runtime's packed kernels (fp32 programs agree to float rounding only).
//
// Placeholders in the templates: @N the function's name, @X / @Y / @B the C types of the input,
// output and second operand. Sizes are int32_t: the emitter refuses tensors of 2^31 elements.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>

#include "compile/emit_c_detail.h"
#include "framework/error.h"

namespace finch::compile::emit_c_detail {

namespace {

struct Template {
  int types;                       // how many dtype suffixes the key carries
  std::vector<std::string> deps;   // helper keys
  const char* text;
};

// rounding_shift and requantize of kernels/requant.cc. `>>` of a negative int64 is an
// arithmetic shift on every compiler finch targets (GCC, Clang; C++20 defines it so).
const char* kRequantize = R"(/* kernels/requant.cc: floor(v / 2^n + 1/2) for n >= 1 (ties toward +infinity), v * 2^-n
   saturated for n <= 0. */
static int64_t finch_rounding_shift(int64_t v, int32_t n) {
  if (n >= 64) return 0;
  if (n >= 1) return (v >> n) + ((v >> (n - 1)) & 1);
  if (v == 0) return 0;
  if (-n >= 63) return v > 0 ? INT64_MAX : INT64_MIN;
  if (v > (INT64_MAX >> -n)) return INT64_MAX;
  if (v < (INT64_MIN >> -n)) return INT64_MIN;
  return (int64_t)((uint64_t)v << -n);
}

/* clamp(z + rounding_shift(acc * m, n), qmin, qmax), clamping before adding z (no overflow). */
static int32_t finch_requantize(int32_t acc, int32_t m, int32_t n, int32_t z, int32_t qmin, int32_t qmax) {
  int64_t r = finch_rounding_shift((int64_t)acc * m, n);
  const int64_t lo = (int64_t)qmin - z, hi = (int64_t)qmax - z;
  if (r < lo) r = lo;
  if (r > hi) r = hi;
  return (int32_t)(r + z);
}

)";

const char* kConvT = R"(/* A convolution's geometry: x [N, C, H, W], w [OC, C/groups, KH, KW], y [N, OC, OH, OW];
   zx .. qmax are the integer form's zero points and output code range. */
typedef struct {
  int32_t N, C, H, W, OC, KH, KW, OH, OW, sh, sw, ph, pw, dh, dw, groups;
  int32_t zx, zy, qmin, qmax;
} finch_conv_t;

/* The outputs [*o0, *o1) of a kernel tap whose input index o * s + off lies inside [0, n). */
static void finch_taps(int32_t off, int32_t s, int32_t n, int32_t outs, int32_t* o0, int32_t* o1) {
  *o0 = off >= 0 ? 0 : (-off + s - 1) / s;
  *o1 = n - off <= 0 ? 0 : (n - off + s - 1) / s;
  if (*o1 > outs) *o1 = outs;
}

)";

// Weight-stationary order: for each output channel, each kernel tap adds (x − zx)·w to a plane of
// int32 accumulators (the emitter's scratch, OH·OW entries) along contiguous output rows, which
// compilers vectorize; zero weights are skipped (they add 0). Integer sums do not depend on the
// order (no partial sum can wrap: each is bounded by Σ|terms| ≤ the loader's accumulator bound).
const char* kQConv = R"(/* qconv2d (kernels/reference_conv.cc): acc = bias[oc] + sum (x - zx) * w over the window
   (padding adds nothing), then requantize with channel oc's (multiplier, shift). acc: OH * OW
   int32 of scratch. */
static void @N(const @X* x, @Y* y, const int8_t* w, const int32_t* bias, const int32_t* mult, const int32_t* shift,
               const finch_conv_t* p, int32_t* acc) {
  const int32_t Cg = p->C / p->groups, OCg = p->OC / p->groups, HW = p->H * p->W, OHW = p->OH * p->OW;
  int32_t n, oc, oh, ow, cg, kh, kw, i;
  for (n = 0; n < p->N; ++n)
    for (oc = 0; oc < p->OC; ++oc) {
      const @X* xg = x + ((int64_t)n * p->C + (oc / OCg) * Cg) * HW;
      const int8_t* wo = w + (int64_t)oc * Cg * p->KH * p->KW;
      @Y* yo = y + ((int64_t)n * p->OC + oc) * OHW;
      const int32_t b = bias ? bias[oc] : 0;
      for (i = 0; i < OHW; ++i) acc[i] = b;
      for (cg = 0; cg < Cg; ++cg)
        for (kh = 0; kh < p->KH; ++kh) {
          int32_t oh0, oh1;
          finch_taps(kh * p->dh - p->ph, p->sh, p->H, p->OH, &oh0, &oh1);
          for (kw = 0; kw < p->KW; ++kw) {
            const int32_t wv = wo[(cg * p->KH + kh) * p->KW + kw], zx = p->zx, sw = p->sw, off = kw * p->dw - p->pw;
            int32_t ow0, ow1;
            if (wv == 0) continue;
            finch_taps(off, sw, p->W, p->OW, &ow0, &ow1);
            for (oh = oh0; oh < oh1; ++oh) {
              const @X* xr = xg + (int64_t)cg * HW + (int64_t)(oh * p->sh + kh * p->dh - p->ph) * p->W;
              int32_t* ar = acc + oh * p->OW;
              if (sw == 1)
                for (ow = ow0; ow < ow1; ++ow) ar[ow] += ((int32_t)xr[ow + off] - zx) * wv;
              else
                for (ow = ow0; ow < ow1; ++ow) ar[ow] += ((int32_t)xr[ow * sw + off] - zx) * wv;
            }
          }
        }
      for (i = 0; i < OHW; ++i) yo[i] = (@Y)finch_requantize(acc[i], mult[oc], shift[oc], p->zy, p->qmin, p->qmax);
    }
}

)";

const char* kQLinear = R"(/* qlinear (kernels/reference_conv.cc): x [rows, K], w [OC, K] -> y [rows, OC]. */
static void @N(const @X* x, @Y* y, const int8_t* w, const int32_t* bias, const int32_t* mult, const int32_t* shift,
               int32_t rows, int32_t K, int32_t OC, int32_t zx, int32_t zy, int32_t qmin, int32_t qmax) {
  int32_t r, oc, k;
  for (r = 0; r < rows; ++r)
    for (oc = 0; oc < OC; ++oc) {
      const @X* xr = x + (int64_t)r * K;
      const int8_t* wr = w + (int64_t)oc * K;
      int32_t acc = bias ? bias[oc] : 0;
      for (k = 0; k < K; ++k) acc += ((int32_t)xr[k] - zx) * wr[k];
      y[(int64_t)r * OC + oc] = (@Y)finch_requantize(acc, mult[oc], shift[oc], zy, qmin, qmax);
    }
}

)";

const char* kQAdd = R"(/* qadd (docs/quantization.md section 7): each line one f32 operation, no fused multiply-add
   (the pragma at the top), a true division, round half to even. */
static void @N(const @X* a, const @B* b, @Y* y, int32_t n, float sa, int32_t za, float sb, int32_t zb, float sy,
               int32_t zy, int32_t qmin, int32_t qmax) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    const float va = (float)((int32_t)a[i] - za) * sa;
    const float vb = (float)((int32_t)b[i] - zb) * sb;
    const float q = nearbyintf((va + vb) / sy);
    const float c = fminf(fmaxf(q + (float)zy, (float)qmin), (float)qmax);
    y[i] = (@Y)(int32_t)c;
  }
}

)";

const char* kQuantize = R"(/* quantize (kernels/quantize.cc): clamp(nearbyint(x / s) + z, lo, hi) in f32; NaN -> z. */
static void @N(const float* x, @Y* y, int32_t n, float s, float z, float lo, float hi) {
  int32_t i;
  for (i = 0; i < n; ++i) {
    float r = z;
    if (!isnan(x[i])) {
      r = nearbyintf(x[i] / s) + z;
      r = r < lo ? lo : r;
      r = hi < r ? hi : r;
    }
    y[i] = (@Y)(int32_t)r;
  }
}

)";

const char* kDequantize = R"(/* dequantize: (q - z) * s. */
static void @N(const @X* q, float* y, int32_t n, int32_t z, float s) {
  int32_t i;
  for (i = 0; i < n; ++i) y[i] = (float)((int32_t)q[i] - z) * s;
}

)";

const char* kQClamp = R"(/* qrelu / qrelu6: codes clamped to [lo, hi] (same scale in and out). */
static void @N(const @X* x, @X* y, int32_t n, int32_t lo, int32_t hi) {
  int32_t i;
  for (i = 0; i < n; ++i) y[i] = (@X)(x[i] < lo ? lo : x[i] > hi ? hi : x[i]);
}

)";

// Pool windows come from the emitter as tables of (lo, hi, count) per output row / column
// (ops::pool_windows / adaptive_pool_windows, PyTorch's geometry); count is the divisor's factor.
const char* kQMaxPool = R"(/* qmax_pool2d: the largest code of each window's input cells (padding never wins). */
static void @N(const @X* x, @X* y, int32_t P, int32_t H, int32_t W, int32_t OH, int32_t OW, const int32_t* wh,
               const int32_t* ww) {
  int32_t c, oh, ow, ih, iw;
  for (c = 0; c < P; ++c)
    for (oh = 0; oh < OH; ++oh)
      for (ow = 0; ow < OW; ++ow) {
        int32_t best = INT32_MIN;
        for (ih = wh[3 * oh]; ih < wh[3 * oh + 1]; ++ih)
          for (iw = ww[3 * ow]; iw < ww[3 * ow + 1]; ++iw) {
            const int32_t v = x[((int64_t)c * H + ih) * W + iw];
            best = v > best ? v : best;
          }
        y[((int64_t)c * OH + oh) * OW + ow] = (@X)best;
      }
}

)";

const char* kQAvgPool = R"(/* qavg_pool2d / qadaptive_avg_pool2d (kernels/reference_pool.cc): sum (x - zx) over the window,
   requantized once by the (multiplier, shift) of s_in / (s_out * count); rq holds (count,
   multiplier, shift) for each count the windows have. */
static void @N(const @X* x, @Y* y, int32_t P, int32_t H, int32_t W, int32_t OH, int32_t OW, const int32_t* wh,
               const int32_t* ww, int32_t zx, int32_t zy, int32_t qmin, int32_t qmax, const int32_t* rq, int32_t nrq) {
  int32_t c, oh, ow, ih, iw, k;
  for (c = 0; c < P; ++c)
    for (oh = 0; oh < OH; ++oh)
      for (ow = 0; ow < OW; ++ow) {
        const int32_t count = wh[3 * oh + 2] * ww[3 * ow + 2];
        int32_t sum = 0;
        for (ih = wh[3 * oh]; ih < wh[3 * oh + 1]; ++ih)
          for (iw = ww[3 * ow]; iw < ww[3 * ow + 1]; ++iw) sum += (int32_t)x[((int64_t)c * H + ih) * W + iw] - zx;
        for (k = 0; k + 1 < nrq && rq[3 * k] != count; ++k) {
        }
        y[((int64_t)c * OH + oh) * OW + ow] = (@Y)finch_requantize(sum, rq[3 * k + 1], rq[3 * k + 2], zy, qmin, qmax);
      }
}

)";

const char* kAct = R"(/* The fused activation of a float node: 0 none, 1 relu, 2 relu6. */
static float finch_act(float v, int32_t act) {
  if (act >= 1 && v < 0.0f) v = 0.0f;
  if (act == 2 && v > 6.0f) v = 6.0f;
  return v;
}

)";

const char* kConv2dF32 = R"(/* conv2d in f32, in the order of the integer form (sums in another order than the runtime's
   packed kernels). acc: OH * OW floats of scratch. */
static void @N(const float* x, float* y, const float* w, const float* bias, const finch_conv_t* p, int32_t act,
               float* acc) {
  const int32_t Cg = p->C / p->groups, OCg = p->OC / p->groups, HW = p->H * p->W, OHW = p->OH * p->OW;
  int32_t n, oc, oh, ow, cg, kh, kw, i;
  for (n = 0; n < p->N; ++n)
    for (oc = 0; oc < p->OC; ++oc) {
      const float* xg = x + ((int64_t)n * p->C + (oc / OCg) * Cg) * HW;
      const float* wo = w + (int64_t)oc * Cg * p->KH * p->KW;
      float* yo = y + ((int64_t)n * p->OC + oc) * OHW;
      const float b = bias ? bias[oc] : 0.0f;
      for (i = 0; i < OHW; ++i) acc[i] = b;
      for (cg = 0; cg < Cg; ++cg)
        for (kh = 0; kh < p->KH; ++kh) {
          int32_t oh0, oh1;
          finch_taps(kh * p->dh - p->ph, p->sh, p->H, p->OH, &oh0, &oh1);
          for (kw = 0; kw < p->KW; ++kw) {
            const float wv = wo[(cg * p->KH + kh) * p->KW + kw];
            const int32_t sw = p->sw, off = kw * p->dw - p->pw;
            int32_t ow0, ow1;
            finch_taps(off, sw, p->W, p->OW, &ow0, &ow1);
            for (oh = oh0; oh < oh1; ++oh) {
              const float* xr = xg + (int64_t)cg * HW + (int64_t)(oh * p->sh + kh * p->dh - p->ph) * p->W;
              float* ar = acc + oh * p->OW;
              if (sw == 1)
                for (ow = ow0; ow < ow1; ++ow) ar[ow] += xr[ow + off] * wv;
              else
                for (ow = ow0; ow < ow1; ++ow) ar[ow] += xr[ow * sw + off] * wv;
            }
          }
        }
      for (i = 0; i < OHW; ++i) yo[i] = finch_act(acc[i], act);
    }
}

)";

const char* kLinearF32 = R"(/* linear in f32: x [rows, K], w [OC, K] -> y [rows, OC]. */
static void @N(const float* x, float* y, const float* w, const float* bias, int32_t rows, int32_t K, int32_t OC,
               int32_t act) {
  int32_t r, oc, k;
  for (r = 0; r < rows; ++r)
    for (oc = 0; oc < OC; ++oc) {
      const float* xr = x + (int64_t)r * K;
      const float* wr = w + (int64_t)oc * K;
      float acc = bias ? bias[oc] : 0.0f;
      for (k = 0; k < K; ++k) acc += xr[k] * wr[k];
      y[(int64_t)r * OC + oc] = finch_act(acc, act);
    }
}

)";

const char* kAddF32 = R"(/* add of two f32 tensors of one shape: a + alpha * b, then the activation. */
static void @N(const float* a, const float* b, float* y, int32_t n, float alpha, int32_t act) {
  int32_t i;
  for (i = 0; i < n; ++i) y[i] = finch_act(alpha == 1.0f ? a[i] + b[i] : a[i] + alpha * b[i], act);
}

)";

const char* kActF32 = R"(/* relu / relu6 of an f32 tensor. */
static void @N(const float* x, float* y, int32_t n, int32_t act) {
  int32_t i;
  for (i = 0; i < n; ++i) y[i] = finch_act(x[i], act);
}

)";

const char* kMaxPoolF32 = R"(/* max_pool2d in f32 over the windows' input cells. */
static void @N(const float* x, float* y, int32_t P, int32_t H, int32_t W, int32_t OH, int32_t OW, const int32_t* wh,
               const int32_t* ww) {
  int32_t c, oh, ow, ih, iw;
  for (c = 0; c < P; ++c)
    for (oh = 0; oh < OH; ++oh)
      for (ow = 0; ow < OW; ++ow) {
        float best = -INFINITY;
        for (ih = wh[3 * oh]; ih < wh[3 * oh + 1]; ++ih)
          for (iw = ww[3 * ow]; iw < ww[3 * ow + 1]; ++iw) {
            const float v = x[((int64_t)c * H + ih) * W + iw];
            best = (v > best || isnan(v)) ? v : best;
          }
        y[((int64_t)c * OH + oh) * OW + ow] = best;
      }
}

)";

const char* kAvgPoolF32 = R"(/* avg_pool2d / adaptive_avg_pool2d in f32 (ops/pool.cc's order: rows, then columns, from 0.0f,
   one division by the count), so the same bits as the runtime. */
static void @N(const float* x, float* y, int32_t P, int32_t H, int32_t W, int32_t OH, int32_t OW, const int32_t* wh,
               const int32_t* ww) {
  int32_t c, oh, ow, ih, iw;
  for (c = 0; c < P; ++c)
    for (oh = 0; oh < OH; ++oh)
      for (ow = 0; ow < OW; ++ow) {
        float acc = 0.0f;
        for (ih = wh[3 * oh]; ih < wh[3 * oh + 1]; ++ih)
          for (iw = ww[3 * ow]; iw < ww[3 * ow + 1]; ++iw) acc += x[((int64_t)c * H + ih) * W + iw];
        y[((int64_t)c * OH + oh) * OW + ow] = acc / (float)(wh[3 * oh + 2] * ww[3 * ow + 2]);
      }
}

)";

const char* kBatchNormF32 = R"(/* batch_norm in inference form: y = x * a[c] + b[c] (a, b from the statistics at emit time). */
static void @N(const float* x, float* y, int32_t N, int32_t C, int32_t S, const float* a, const float* b) {
  int32_t n, c, s;
  for (n = 0; n < N; ++n)
    for (c = 0; c < C; ++c) {
      const int64_t off = ((int64_t)n * C + c) * S;
      for (s = 0; s < S; ++s) y[off + s] = x[off + s] * a[c] + b[c];
    }
}

)";

const char* kSoftmaxF32 = R"(/* softmax over one dim: x viewed as [outer, D, inner]. */
static void @N(const float* x, float* y, int32_t outer, int32_t D, int32_t inner) {
  int32_t o, d, i;
  for (o = 0; o < outer; ++o)
    for (i = 0; i < inner; ++i) {
      const float* xo = x + (int64_t)o * D * inner + i;
      float* yo = y + (int64_t)o * D * inner + i;
      float m = xo[0], sum = 0.0f;
      for (d = 1; d < D; ++d) m = xo[(int64_t)d * inner] > m ? xo[(int64_t)d * inner] : m;
      for (d = 0; d < D; ++d) {
        yo[(int64_t)d * inner] = expf(xo[(int64_t)d * inner] - m);
        sum += yo[(int64_t)d * inner];
      }
      for (d = 0; d < D; ++d) yo[(int64_t)d * inner] /= sum;
    }
}

)";

const std::map<std::string, Template>& templates() {
  static const std::map<std::string, Template> t = {
      {"requantize", {0, {}, kRequantize}},
      {"conv_t", {0, {}, kConvT}},
      {"act", {0, {}, kAct}},
      {"qconv2d", {2, {"requantize", "conv_t"}, kQConv}},
      {"qlinear", {2, {"requantize"}, kQLinear}},
      {"qadd", {3, {}, kQAdd}},
      {"quantize", {1, {}, kQuantize}},
      {"dequantize", {1, {}, kDequantize}},
      {"qclamp", {1, {}, kQClamp}},
      {"qmax_pool", {1, {}, kQMaxPool}},
      {"qavg_pool", {2, {"requantize"}, kQAvgPool}},
      {"conv2d_f32", {0, {"conv_t", "act"}, kConv2dF32}},
      {"linear_f32", {0, {"act"}, kLinearF32}},
      {"add_f32", {0, {"act"}, kAddF32}},
      {"act_f32", {0, {"act"}, kActF32}},
      {"max_pool_f32", {0, {}, kMaxPoolF32}},
      {"avg_pool_f32", {0, {}, kAvgPoolF32}},
      {"batch_norm_f32", {0, {}, kBatchNormF32}},
      {"softmax_f32", {0, {}, kSoftmaxF32}},
  };
  return t;
}

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

}  // namespace

const char* c_type(const std::string& d) {
  if (d == "i8") return "int8_t";
  if (d == "u8") return "uint8_t";
  if (d == "f32") return "float";
  if (d == "i64") return "int64_t";
  fail("emit-c: no C type for dtype '", d, "'");
}

std::string kernel_text(const std::string& key, std::vector<std::string>& deps) {
  if (std::string rnn = rnn_kernel_text(key, deps); !rnn.empty()) return rnn;  // emit_c_kernels_rnn.cc
  if (std::string dq = dq_kernel_text(key, deps); !dq.empty()) return dq;      // emit_c_kernels_dq.cc
  // The base is the longest template name the key starts with; the rest are dtype suffixes.
  const Template* tp = nullptr;
  std::string base;
  for (const auto& [name, t] : templates())
    if (key.compare(0, name.size(), name) == 0 && (key.size() == name.size() || key[name.size()] == '_') &&
        name.size() > base.size())
      tp = &t, base = name;
  FINCH_CHECK(tp != nullptr, "emit-c: no kernel template for key ", key);
  std::vector<std::string> types;
  for (size_t at = base.size(); at < key.size();) {
    const size_t next = key.find('_', at + 1);
    types.push_back(key.substr(at + 1, next == std::string::npos ? std::string::npos : next - at - 1));
    at = next == std::string::npos ? key.size() : next;
  }
  FINCH_CHECK(int(types.size()) == tp->types, "emit-c: kernel key ", key, " has ", types.size(), " dtypes, ",
              base, " takes ", tp->types);
  deps = tp->deps;
  std::string s = tp->text;
  replace_all(s, "@N", "finch_" + key);
  // Templates name the input @X, the output @Y and a second operand @B; a one-dtype template's
  // dtype is its input's (dequantize, qclamp, qmax_pool) or its output's (quantize).
  if (base == "quantize") {
    replace_all(s, "@Y", c_type(types[0]));
  } else if (types.size() >= 1) {
    replace_all(s, "@X", c_type(types[0]));
    if (types.size() == 2) replace_all(s, "@Y", c_type(types[1]));
    if (types.size() == 3) replace_all(s, "@B", c_type(types[1])), replace_all(s, "@Y", c_type(types[2]));
  }
  return s;
}

std::string float_literal(float v) {
  if (!std::isfinite(v)) fail("emit-c: cannot write the non-finite number ", v, " as a C literal");
  char buf[64];
  for (int prec = 6; prec <= 9; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, double(v));
    const float back = std::strtof(buf, nullptr);
    if (std::memcmp(&back, &v, sizeof v) == 0) break;
  }
  std::string s = buf;
  if (s.find_first_of(".e") == std::string::npos) s += ".0";
  return s + "f";
}

std::string int_literal(int64_t v) {
  if (v == INT32_MIN) return "(-2147483647 - 1)";
  return std::to_string(v);
}

}  // namespace finch::compile::emit_c_detail
