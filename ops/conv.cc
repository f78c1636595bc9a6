// conv2d through im2col + OpenBLAS GEMM (direct GEMM for 1×1 stride-1), its backward, and the
// plain 7-loop reference. Depthwise convs go to the direct kernel in ops/depthwise_hwy.cc.
#include "ops/conv.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "framework/checked_math.h"
#include "framework/parallel.h"
#include "ops/gemm.h"
#include "ops/im2col.h"

namespace finch::ops {

namespace {

struct Geometry {
  int64_t N, C, H, W, OC, KH, KW, OH, OW, G, Cg, OCg;
  ConvGeometry img;  // one group of one image
};

Geometry validate(const char* op, const Tensor& x, const Tensor& w, const Tensor& b,
                  const Conv2dParams& p) {
  if (x.dim() != 4) fail(op, ": expected a 4-D input [N, C, H, W], got shape ", shape_str(x.shape()));
  if (w.dim() != 4)
    fail(op, ": expected a 4-D weight [OC, C/groups, KH, KW], got shape ", shape_str(w.shape()));
  if (x.dtype() != w.dtype() || (x.dtype() != DType::f32 && x.dtype() != DType::f64))
    fail(op, ": expected F32 or F64 input and weight of one dtype, got ", dtype_name(x.dtype()),
         " and ", dtype_name(w.dtype()));
  if (p.groups < 1) fail(op, ": expected groups >= 1, got ", p.groups);
  if (p.sh < 1 || p.sw < 1 || p.dh < 1 || p.dw < 1 || p.ph < 0 || p.pw < 0)
    fail(op, ": expected stride >= 1, dilation >= 1 and padding >= 0, got stride (", p.sh, ", ",
         p.sw, "), padding (", p.ph, ", ", p.pw, "), dilation (", p.dh, ", ", p.dw, ")");
  Geometry g;
  g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
  g.OC = w.size(0), g.KH = w.size(2), g.KW = w.size(3), g.G = p.groups;
  if (g.C % g.G != 0 || g.OC % g.G != 0)
    fail(op, ": expected input channels (", g.C, ") and output channels (", g.OC,
         ") divisible by groups (", g.G, ")");
  g.Cg = g.C / g.G, g.OCg = g.OC / g.G;
  if (w.size(1) != g.Cg)
    fail(op, ": expected a weight [", g.OC, ", ", g.Cg, ", KH, KW] for ", g.C, " input channels and ",
         g.G, " groups, got shape ", shape_str(w.shape()));
  if (b.defined() && (b.dim() != 1 || b.size(0) != g.OC || b.dtype() != x.dtype()))
    fail(op, ": expected a bias [", g.OC, "] of dtype ", dtype_name(x.dtype()), ", got shape ",
         shape_str(b.shape()), " ", dtype_name(b.dtype()));
  g.OH = conv_out_size(g.H, g.KH, p.sh, p.ph, p.dh);
  g.OW = conv_out_size(g.W, g.KW, p.sw, p.pw, p.dw);
  if (g.OH < 1 || g.OW < 1)
    fail(op, ": the input ", shape_str(x.shape()), " is smaller than the dilated kernel ",
         shape_str(w.shape()), " with padding (", p.ph, ", ", p.pw, ")");
  g.img = ConvGeometry{g.Cg, g.H, g.W, g.KH, g.KW, p.sh, p.sw, p.ph, p.pw, p.dh, p.dw, g.OH, g.OW};
  return g;
}

bool is_pointwise(const Geometry& g, const Conv2dParams& p) {
  return g.KH == 1 && g.KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
}

// Splits N images into `chunks` contiguous ranges; chunk c is [first(c), first(c+1)).
struct BatchSplit {
  int64_t N, chunks;
  int64_t first(int64_t c) const { return c * N / chunks; }
};

// Parallel over the batch when there are enough images for every thread (each sgemm then runs
// single-threaded inside its chunk); otherwise one chunk, and OpenBLAS threads each GEMM.
BatchSplit split_batch(int64_t N) {
  const int64_t t = get_num_threads();
  return BatchSplit{N, N >= t ? t : 1};
}

template <typename T>
void run_chunks(const BatchSplit& s, const std::function<void(int64_t, int64_t, int64_t)>& fn) {
  if (s.chunks == 1) {
    fn(0, 0, s.N);
    return;
  }
  parallel_for(0, s.chunks, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) fn(c, s.first(c), s.first(c + 1));
  });
}

// Output rows per tile: the tile's patch matrix [Kc, rows·OW] should stay in L2 (~640 KB) while
// the GEMM packs it, and be wide enough (~256 columns) for OpenBLAS to run near peak. Measured
// on the 3×3 64→64 32×32 layer: 256-column tiles cut each GEMM by ~12% against whole images.
int64_t tile_rows(const Geometry& g) {
  const int64_t Kc = g.Cg * g.KH * g.KW;
  const int64_t cols = std::clamp<int64_t>(163840 / std::max<int64_t>(Kc, 1), 64, 512);
  return std::clamp<int64_t>(cols / g.OW, 1, g.OH);
}

template <typename T>
Tensor conv2d_gemm(const Tensor& xin, const Tensor& win, const Tensor& bin, const Geometry& g,
                   const Conv2dParams& p) {
  const Tensor x = xin.contiguous(), w = win.contiguous();
  const Tensor b = bin.defined() ? bin.contiguous() : Tensor();
  Tensor y = empty({g.N, g.OC, g.OH, g.OW}, x.dtype());
  const int64_t OHW = g.OH * g.OW, HW = g.H * g.W, Kc = g.Cg * g.KH * g.KW;
  const bool direct = is_pointwise(g, p);
  const int64_t rows = direct ? g.OH : tile_rows(g);
  const T *px = x.data<T>(), *pw = w.data<T>(), *pb = b.defined() ? b.data<T>() : nullptr;
  T* py = y.data<T>();
  run_chunks<T>(split_batch(g.N), [&](int64_t, int64_t n0, int64_t n1) {
    T* col = direct ? nullptr : conv_scratch<T, 0>(size_t(Kc * rows * g.OW));
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t gr = 0; gr < g.G; ++gr) {
        const T* xg = px + (n * g.C + gr * g.Cg) * HW;
        const T* wg = pw + gr * g.OCg * Kc;
        T* yg = py + (n * g.OC + gr * g.OCg) * OHW;
        // The bias is fused: the output tile starts as the bias (written just before the GEMM,
        // so it is still in cache) and the GEMM adds to it with beta = 1.
        const T beta = pb ? T(1) : T(0);
        auto fill_bias = [&](int64_t c0, int64_t c1) {
          if (pb)
            for (int64_t o = 0; o < g.OCg; ++o)
              std::fill(yg + o * OHW + c0, yg + o * OHW + c1, pb[gr * g.OCg + o]);
        };
        if (direct) {
          fill_bias(0, OHW);
          gemm_t<T>(false, false, g.OCg, OHW, Kc, wg, Kc, xg, HW, beta, yg, OHW);
          continue;
        }
        for (int64_t oh0 = 0; oh0 < g.OH; oh0 += rows) {
          const int64_t oh1 = std::min(g.OH, oh0 + rows), cols = (oh1 - oh0) * g.OW;
          im2col(xg, g.img, oh0, oh1, col);
          fill_bias(oh0 * g.OW, oh1 * g.OW);
          // Y_g[:, tile] (+)= W_g [OCg, Kc] · col [Kc, cols]
          gemm_t<T>(false, false, g.OCg, cols, Kc, wg, Kc, col, cols, beta, yg + oh0 * g.OW, OHW);
        }
      }
  });
  return y;
}

template <typename T>
Conv2dGrads conv2d_backward_gemm(const Tensor& dyin, const Tensor& xin, const Tensor& win,
                                 const Geometry& g, const Conv2dParams& p, bool need_x,
                                 bool need_w, bool need_b) {
  const Tensor dy = dyin.contiguous(), x = xin.contiguous(), w = win.contiguous();
  const int64_t OHW = g.OH * g.OW, HW = g.H * g.W, Kc = g.Cg * g.KH * g.KW;
  const bool direct = is_pointwise(g, p);
  const int64_t rows = direct ? g.OH : tile_rows(g);
  Conv2dGrads out;
  // dx is zeroed image by image inside the chunks (col2im accumulates), so the zeroing lands in
  // cache right before col2im touches it instead of a separate pass over the whole tensor.
  if (need_x) out.dx = empty(x.shape(), x.dtype());
  const BatchSplit split = split_batch(g.N);
  // One partial dWᵀ [G, Kc, OCg] per chunk, summed in chunk order afterwards (deterministic for
  // a thread count). Transposed because col·dYᵀ (M = Kc, N = OCg) runs ~25% faster in OpenBLAS
  // than dY·colᵀ (M = OCg, N = Kc) on these shapes.
  std::vector<std::vector<T>> dwt_part(need_w ? size_t(split.chunks) : 0);
  const T *px = x.data<T>(), *pw = w.data<T>(), *pdy = dy.data<T>();
  T* pdx = need_x ? out.dx.data<T>() : nullptr;
  if (need_x || need_w)
    run_chunks<T>(split, [&](int64_t c, int64_t n0, int64_t n1) {
      const size_t tile = size_t(Kc * rows * g.OW);
      T* col = direct || !need_w ? nullptr : conv_scratch<T, 0>(tile);
      T* dcol = direct || !need_x ? nullptr : conv_scratch<T, 1>(tile);
      if (need_w) dwt_part[size_t(c)].assign(size_t(g.OC * Kc), T(0));
      for (int64_t n = n0; n < n1; ++n) {
        if (need_x && !direct) std::fill(pdx + n * g.C * HW, pdx + (n + 1) * g.C * HW, T(0));
        for (int64_t gr = 0; gr < g.G; ++gr) {
          const T* dyg = pdy + (n * g.OC + gr * g.OCg) * OHW;
          const T* wg = pw + gr * g.OCg * Kc;
          const T* xg = px + (n * g.C + gr * g.Cg) * HW;
          T* dxg = need_x ? pdx + (n * g.C + gr * g.Cg) * HW : nullptr;
          T* dwt = need_w ? dwt_part[size_t(c)].data() + gr * Kc * g.OCg : nullptr;
          if (direct) {  // x_g is its own patch matrix [Cg, HW]
            if (need_w) gemm_t<T>(false, true, Kc, g.OCg, OHW, xg, HW, dyg, OHW, T(1), dwt, g.OCg);
            if (need_x) gemm_t<T>(true, false, Kc, OHW, g.OCg, wg, Kc, dyg, OHW, T(0), dxg, OHW);
            continue;
          }
          for (int64_t oh0 = 0; oh0 < g.OH; oh0 += rows) {
            const int64_t oh1 = std::min(g.OH, oh0 + rows), cols = (oh1 - oh0) * g.OW;
            const T* dyt = dyg + oh0 * g.OW;  // dY_g[:, tile], leading dim OHW
            if (need_w) {
              im2col(xg, g.img, oh0, oh1, col);
              // dW_gᵀ [Kc, OCg] += col [Kc, cols] · dY_tileᵀ
              gemm_t<T>(false, true, Kc, g.OCg, cols, col, cols, dyt, OHW, T(1), dwt, g.OCg);
            }
            if (need_x) {
              // dcol [Kc, cols] = W_gᵀ · dY_tile, scattered back by col2im
              gemm_t<T>(true, false, Kc, cols, g.OCg, wg, Kc, dyt, OHW, T(0), dcol, cols);
              col2im(dcol, g.img, oh0, oh1, dxg);
            }
          }
        }
      }
    });
  if (need_w) {
    out.dweight = empty(w.shape(), w.dtype());
    T* pdw = out.dweight.data<T>();
    for (int64_t gr = 0; gr < g.G; ++gr)
      for (int64_t k = 0; k < Kc; ++k)
        for (int64_t o = 0; o < g.OCg; ++o) {
          const size_t src = size_t((gr * Kc + k) * g.OCg + o);
          T acc = dwt_part[0][src];
          for (size_t c = 1; c < dwt_part.size(); ++c) acc += dwt_part[c][src];
          pdw[(gr * g.OCg + o) * Kc + k] = acc;
        }
  }
  if (need_b) out.dbias = channel_sums(dy.view({g.N, g.OC, OHW}));
  return out;
}

template <typename T>
void channel_sums_impl(const T* y, int64_t N, int64_t C, int64_t S, T* out) {
  parallel_for(0, C, std::max<int64_t>(1, 32768 / std::max<int64_t>(N * S, 1)),
               [&](int64_t c0, int64_t c1) {
                 for (int64_t c = c0; c < c1; ++c) {
                   T total = 0;
                   for (int64_t n = 0; n < N; ++n) {
                     const T* plane = y + (n * C + c) * S;
                     // Eight partial sums: breaks the add chain and lets the compiler vectorize.
                     T acc[8] = {};
                     int64_t s = 0;
                     for (; s + 8 <= S; s += 8)
                       for (int k = 0; k < 8; ++k) acc[k] += plane[s + k];
                     for (; s < S; ++s) acc[0] += plane[s];
                     total += ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
                   }
                   out[c] = total;
                 }
               });
}

}  // namespace

int64_t conv_out_size(int64_t in, int64_t k, int64_t stride, int64_t pad, int64_t dil) {
  // Every operand can come from a file or an option: checked, so a huge padding or dilation is
  // a sentence, not a wrapped size a kernel then indexes with.
  if (in < 0 || k < 1 || stride < 1 || pad < 0 || dil < 1)
    fail("conv2d: expected input ≥ 0, kernel ≥ 1, stride ≥ 1, padding ≥ 0 and dilation ≥ 1, found ", in, ", ", k,
         ", ", stride, ", ", pad, ", ", dil);
  const int64_t padded = checked_add(in, checked_mul(2, pad, "conv2d (padding)"), "conv2d (padded input)");
  const int64_t window = checked_add(checked_mul(dil, k - 1, "conv2d (dilated kernel)"), 1, "conv2d (dilated kernel)");
  return padded < window ? 0 : (padded - window) / stride + 1;
}

bool is_depthwise(int64_t C, int64_t OC, int64_t groups) {
  return groups == C && C > 1 && OC % C == 0;
}

Tensor channel_sums(const Tensor& y) {
  if (y.dim() < 2) fail("channel_sums: expected a tensor [N, C, ...], got shape ", shape_str(y.shape()));
  const Tensor c = y.contiguous();
  const int64_t N = y.size(0), C = y.size(1), S = N * C == 0 ? 0 : y.numel() / (N * C);
  Tensor out = empty({C}, y.dtype());
  if (y.dtype() == DType::f32)
    channel_sums_impl(c.data<float>(), N, C, S, out.data<float>());
  else if (y.dtype() == DType::f64)
    channel_sums_impl(c.data<double>(), N, C, S, out.data<double>());
  else
    fail("channel_sums: expected an F32 or F64 tensor, got ", dtype_name(y.dtype()));
  return out;
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Conv2dParams& p) {
  const Geometry g = validate("conv2d", x, weight, bias, p);
  if (is_depthwise(g.C, g.OC, g.G)) return depthwise_conv2d(x, weight, bias, p);
  if (x.dtype() == DType::f32 && winograd_applies(g.C, g.OC, g.KH, g.KW, p))
    return conv2d_winograd(x, weight, bias, p.ph, p.pw);
  return x.dtype() == DType::f32 ? conv2d_gemm<float>(x, weight, bias, g, p)
                                 : conv2d_gemm<double>(x, weight, bias, g, p);
}

Conv2dGrads conv2d_backward(const Tensor& dy, const Tensor& x, const Tensor& weight,
                            const Conv2dParams& p, bool need_x, bool need_weight, bool need_bias) {
  const Geometry g = validate("conv2d_backward", x, weight, Tensor(), p);
  if (dy.shape() != Shape{g.N, g.OC, g.OH, g.OW})
    fail("conv2d_backward: expected a gradient of shape ", shape_str({g.N, g.OC, g.OH, g.OW}),
         ", got ", shape_str(dy.shape()));
  const Tensor d = dy.to(x.dtype());
  if (is_depthwise(g.C, g.OC, g.G))
    return depthwise_conv2d_backward(d, x, weight, p, need_x, need_weight, need_bias);
  if (x.dtype() == DType::f32 && winograd_applies(g.C, g.OC, g.KH, g.KW, p)) {
    Conv2dGrads r;
    if (need_weight) r.dweight = conv2d_winograd_dweight(x, d, p.ph, p.pw);
    if (need_bias) r.dbias = channel_sums(d.contiguous().view({g.N, g.OC, g.OH * g.OW}));
    if (!need_x) return r;
    // dX is a stride-1 conv of dY with the kernel flipped in space and transposed in channels,
    // padded by 2 − p: dx[c, i, j] = Σ dy[oc, i + p − kh, j + p − kw] · w[oc, c, kh, kw].
    const Tensor wf = weight.contiguous();
    Tensor wt = empty({g.C, g.OC, 3, 3}, DType::f32);
    const float* s = wf.data<float>();
    float* t = wt.data<float>();
    for (int64_t oc = 0; oc < g.OC; ++oc)
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t k = 0; k < 9; ++k) t[(c * g.OC + oc) * 9 + (8 - k)] = s[(oc * g.C + c) * 9 + k];
    r.dx = conv2d_winograd(d, wt, Tensor(), 2 - p.ph, 2 - p.pw);
    return r;
  }
  return x.dtype() == DType::f32
             ? conv2d_backward_gemm<float>(d, x, weight, g, p, need_x, need_weight, need_bias)
             : conv2d_backward_gemm<double>(d, x, weight, g, p, need_x, need_weight, need_bias);
}

// y[n, oc, oh, ow] = b[oc] + Σ_{ci, kh, kw} x[n, g·Cg + ci, oh·sh − ph + kh·dh, ow·sw − pw + kw·dw]
//                                      · w[oc, ci, kh, kw],   g = oc / OCg.
Tensor conv2d_reference(const Tensor& x, const Tensor& weight, const Tensor& bias,
                        const Conv2dParams& p) {
  const Geometry g = validate("conv2d_reference", x, weight, bias, p);
  const auto X = x.to_vector<double>(), Wt = weight.to_vector<double>();
  const auto B = bias.defined() ? bias.to_vector<double>() : std::vector<double>(size_t(g.OC), 0.0);
  std::vector<double> y(size_t(g.N * g.OC * g.OH * g.OW));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          double acc = B[size_t(oc)];
          const int64_t gr = oc / g.OCg;
          for (int64_t ci = 0; ci < g.Cg; ++ci)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * p.sh - p.ph + kh * p.dh, iw = ow * p.sw - p.pw + kw * p.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                acc += X[size_t(((n * g.C + gr * g.Cg + ci) * g.H + ih) * g.W + iw)] *
                       Wt[size_t(((oc * g.Cg + ci) * g.KH + kh) * g.KW + kw)];
              }
          y[size_t(((n * g.OC + oc) * g.OH + oh) * g.OW + ow)] = acc;
        }
  return from_vector(y, {g.N, g.OC, g.OH, g.OW}).to(x.dtype());
}

// The same seven loops, each product's contribution sent back to dx, dw and db.
Conv2dGrads conv2d_backward_reference(const Tensor& dy, const Tensor& x, const Tensor& weight,
                                      const Conv2dParams& p) {
  const Geometry g = validate("conv2d_backward_reference", x, weight, Tensor(), p);
  const auto X = x.to_vector<double>(), Wt = weight.to_vector<double>(), DY = dy.to_vector<double>();
  std::vector<double> dx(X.size()), dw(Wt.size()), db(size_t(g.OC));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oc = 0; oc < g.OC; ++oc)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow) {
          const double d = DY[size_t(((n * g.OC + oc) * g.OH + oh) * g.OW + ow)];
          db[size_t(oc)] += d;
          const int64_t gr = oc / g.OCg;
          for (int64_t ci = 0; ci < g.Cg; ++ci)
            for (int64_t kh = 0; kh < g.KH; ++kh)
              for (int64_t kw = 0; kw < g.KW; ++kw) {
                const int64_t ih = oh * p.sh - p.ph + kh * p.dh, iw = ow * p.sw - p.pw + kw * p.dw;
                if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
                const size_t xi = size_t(((n * g.C + gr * g.Cg + ci) * g.H + ih) * g.W + iw);
                const size_t wi = size_t(((oc * g.Cg + ci) * g.KH + kh) * g.KW + kw);
                dx[xi] += d * Wt[wi];
                dw[wi] += d * X[xi];
              }
        }
  Conv2dGrads out;
  out.dx = from_vector(dx, x.shape()).to(x.dtype());
  out.dweight = from_vector(dw, weight.shape()).to(x.dtype());
  out.dbias = from_vector(db, {g.OC}).to(x.dtype());
  return out;
}

}  // namespace finch::ops
