// Reference kernels (kernels/reference.h): qmax_pool2d, qavg_pool2d, qadaptive_avg_pool2d.
// Windows and output sizes follow PyTorch (ops::pool_out_size); average pools sum centered codes
// exactly and requantize once by s_in / (s_out · count).
//
// Shapes: x [P.., H, W] (P.. = [N, C] or [C]) viewed as P planes of H×W; y [P.., OH, OW].
#include <algorithm>
#include <limits>

#include "framework/error.h"
#include "kernels/reference.h"
#include "kernels/reference_util.h"

namespace finch::quant::reference {

using namespace detail;

// The checks of torch's pooling (and ops/pool.cc): padding at most half the kernel, which with
// the ceil_mode rule guarantees every window holds at least one input cell.
void detail::check_pool(const char* op, const ops::Pool2dParams& p, int64_t H, int64_t W, int64_t& OH, int64_t& OW) {
  if (p.kh < 1 || p.kw < 1 || p.sh < 1 || p.sw < 1 || p.ph < 0 || p.pw < 0)
    fail(op, ": expected kernel >= 1, stride >= 1 and padding >= 0, got kernel (", p.kh, ", ", p.kw, "), stride (",
         p.sh, ", ", p.sw, "), padding (", p.ph, ", ", p.pw, ")");
  if (2 * p.ph > p.kh || 2 * p.pw > p.kw)
    fail(op, ": expected padding at most half the kernel size, got padding (", p.ph, ", ", p.pw, ") for kernel (",
         p.kh, ", ", p.kw, ")");
  OH = ops::pool_out_size(H, p.kh, p.sh, p.ph, p.ceil_mode);
  OW = ops::pool_out_size(W, p.kw, p.sw, p.pw, p.ceil_mode);
  if (OH < 1 || OW < 1)
    fail(op, ": the input plane [", H, ", ", W, "] is too small for kernel (", p.kh, ", ", p.kw, ") with padding (",
         p.ph, ", ", p.pw, "): the output would be empty");
}

namespace {

// One output cell's window along one dim (ops::pool_windows, PyTorch's geometry): input cells
// [lo, hi), and the cells torch's avg pool counts with count_include_pad (`span`).
using Window = ops::PoolWindow;

struct Planes {
  Shape lead;  // [N, C] or [C]
  int64_t P = 1, H = 0, W = 0;
};

Planes planes_of(const char* op, const Tensor& x) {
  check_codes(op, "input x", x);
  if (x.dim() != 3 && x.dim() != 4) fail(op, ": expected input x of shape [N, C, H, W] or [C, H, W], got ", describe(x));
  Planes pl;
  pl.lead.assign(x.shape().begin(), x.shape().end() - 2);
  pl.P = shape_numel(pl.lead);
  pl.H = x.size(-2);
  pl.W = x.size(-1);
  if (pl.H < 1 || pl.W < 1) fail(op, ": expected a non-empty input plane, got ", describe(x));
  return pl;
}

Shape with_hw(Shape lead, int64_t h, int64_t w) {
  lead.push_back(h);
  lead.push_back(w);
  return lead;
}



// The shared average: Σ (q − zx) over each window in int64, the divisor from `count_of`, one
// requantize by the FixedPointMultiplier of s_in / (s_out · count) (cached per count).
template <class CountOf>
Tensor average(const char* op, const Tensor& x, const Planes& pl, const std::vector<Window>& wh,
               const std::vector<Window>& ww, const CountOf& count_of, float s_in, int32_t zx, float s_out,
               int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  const int64_t OH = int64_t(wh.size()), OW = int64_t(ww.size());
  const auto X = codes_of(x);
  std::vector<FixedPointMultiplier> m_of_count;
  std::vector<bool> known;
  std::vector<int32_t> y(size_t(pl.P * OH * OW));
  for (int64_t c = 0; c < pl.P; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const Window& h = wh[size_t(oh)];
        const Window& w = ww[size_t(ow)];
        int64_t sum = 0;
        for (int64_t ih = h.lo; ih < h.hi; ++ih)
          for (int64_t iw = w.lo; iw < w.hi; ++iw) sum += X[size_t((c * pl.H + ih) * pl.W + iw)] - zx;
        const int64_t count = count_of(h, w);
        FINCH_CHECK(count >= 1, op, ": empty pooling window at (", oh, ", ", ow, ")");
        // |sum| <= 255 · count: int32 holds it for any window below 2^23 cells.
        FINCH_CHECK(sum >= std::numeric_limits<int32_t>::min() && sum <= std::numeric_limits<int32_t>::max(), op,
                    ": the window sum ", sum, " does not fit int32");
        if (size_t(count) >= known.size()) {
          known.resize(size_t(count) + 1, false);
          m_of_count.resize(size_t(count) + 1);
        }
        if (!known[size_t(count)]) {
          m_of_count[size_t(count)] = quantize_multiplier(double(s_in) / (double(s_out) * double(count)));
          known[size_t(count)] = true;
        }
        y[size_t((c * OH + oh) * OW + ow)] = requantize(int32_t(sum), m_of_count[size_t(count)], z_out, qmin, qmax);
      }
  return codes_tensor(y, with_hw(pl.lead, OH, OW), out_dtype);
}

void check_average_args(const char* op, const Tensor& x, float s_in, int32_t zx, float s_out, int32_t z_out,
                        int32_t qmin, int32_t qmax, DType out_dtype) {
  check_zero_point(op, "input zero point", zx, x.dtype());
  check_scale(op, "input scale", s_in);
  check_scale(op, "output scale", s_out);
  check_output(op, z_out, qmin, qmax, out_dtype);
}

}  // namespace

Tensor qmax_pool2d(const Tensor& x, const ops::Pool2dParams& p) {
  const Planes pl = planes_of("qmax_pool2d", x);
  int64_t OH, OW;
  check_pool("qmax_pool2d", p, pl.H, pl.W, OH, OW);
  const auto wh = ops::pool_windows(OH, pl.H, p.kh, p.sh, p.ph), ww = ops::pool_windows(OW, pl.W, p.kw, p.sw, p.pw);
  const auto X = codes_of(x);
  std::vector<int32_t> y(size_t(pl.P * OH * OW));
  for (int64_t c = 0; c < pl.P; ++c)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        const Window& h = wh[size_t(oh)];
        const Window& w = ww[size_t(ow)];
        FINCH_CHECK(h.lo < h.hi && w.lo < w.hi, "qmax_pool2d: empty pooling window at (", oh, ", ", ow, ")");
        int32_t best = std::numeric_limits<int32_t>::min();  // padding never wins: only input cells
        for (int64_t ih = h.lo; ih < h.hi; ++ih)
          for (int64_t iw = w.lo; iw < w.hi; ++iw) best = std::max(best, X[size_t((c * pl.H + ih) * pl.W + iw)]);
        y[size_t((c * OH + oh) * OW + ow)] = best;
      }
  return codes_tensor(y, with_hw(pl.lead, OH, OW), x.dtype());
}

Tensor qavg_pool2d(const Tensor& x, const ops::Pool2dParams& p, float s_in, int32_t zx, float s_out, int32_t z_out,
                   int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qavg_pool2d";
  const Planes pl = planes_of(op, x);
  int64_t OH, OW;
  check_pool(op, p, pl.H, pl.W, OH, OW);
  check_average_args(op, x, s_in, zx, s_out, z_out, qmin, qmax, out_dtype);
  // torch's divisor: the window clipped to input + padding (count_include_pad) or to the input.
  const auto count_of = [&](const Window& h, const Window& w) {
    return p.count_include_pad ? h.span * w.span : (h.hi - h.lo) * (w.hi - w.lo);
  };
  return average(op, x, pl, ops::pool_windows(OH, pl.H, p.kh, p.sh, p.ph), ops::pool_windows(OW, pl.W, p.kw, p.sw, p.pw),
                 count_of, s_in, zx, s_out, z_out, qmin, qmax, out_dtype);
}

Tensor qadaptive_avg_pool2d(const Tensor& x, int64_t OH, int64_t OW, float s_in, int32_t zx, float s_out,
                            int32_t z_out, int32_t qmin, int32_t qmax, DType out_dtype) {
  constexpr const char* op = "qadaptive_avg_pool2d";
  const Planes pl = planes_of(op, x);
  if (OH < 1 || OW < 1) fail(op, ": expected an output size >= 1, got (", OH, ", ", OW, ")");
  check_average_args(op, x, s_in, zx, s_out, z_out, qmin, qmax, out_dtype);
  const auto count_of = [](const Window& h, const Window& w) { return (h.hi - h.lo) * (w.hi - w.lo); };
  return average(op, x, pl, ops::adaptive_pool_windows(OH, pl.H), ops::adaptive_pool_windows(OW, pl.W), count_of, s_in, zx, s_out, z_out,
                 qmin, qmax, out_dtype);
}

}  // namespace finch::quant::reference
