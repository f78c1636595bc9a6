// lane_traffic (runtime/lane_traffic.h): the owners of every activation element, node by node,
// and the reads of each conv attributed to lanes.
#include "runtime/lane_traffic.h"

#include <algorithm>

#include "framework/parallel.h"
#include "framework/parallel_split.h"
#include "kernels/dwconv_band.h"
#include "kernels/f32_dwconv.h"
#include "kernels/qs8_dwconv.h"
#include "ops/conv.h"
#include "ops/op_attrs.h"

namespace finch::runtime {

namespace {

namespace qk = quant::kernels;
using Owners = std::vector<int8_t>;  // per element of a value: the lane that wrote it, −1 none

// The part of [0, n) cut into `parts` balanced contiguous parts that holds i.
int64_t part_of(int64_t n, int64_t parts, int64_t i) { return detail::lane_of_chunk(n, parts, i); }

struct Reads {
  const Owners* in = nullptr;  // null: a graph input or a constant (not counted)
  NodeTraffic* t = nullptr;
  void add(int64_t idx, int lane) const {
    if (!in) return;
    const int8_t o = (*in)[size_t(idx)];
    if (o < 0) return;
    ++t->reads;
    t->cross += o != lane;
  }
};

// A depthwise conv: the operator's own split (or, with by_channels, the split before bands).
void depthwise(const Value& x, const Value& y, const Value& w, const ops::Conv2dParams& p, bool int8, int threads,
               bool by_channels, const Reads& rd, Owners& out, NodeTraffic& t) {
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OH = y.shape[2], OW = y.shape[3], M = w.shape[0] / C, KH = w.shape[2], KW = w.shape[3];
  const qk::DwGrid grid = int8 ? qk::qs8_dwconv_grid(C, H, W, OH, OW, KH, KW, p.sw, p.dw)
                               : qk::f32_dwconv_grid(C, M, H, W, OH, OW, KH, KW, p.sh, p.sw, p.dh, p.dw);
  // Output rows [oh0, oh1) of image n, grid columns [c0, c1), on `lane`.
  auto piece = [&](int lane, int64_t n, int64_t oh0, int64_t oh1, int64_t c0, int64_t c1) {
    const qk::DwBand b = qk::dw_band(H, KH, p.sh, p.ph, p.dh, oh0, oh1);
    for (int64_t c = c0 * grid.col_channels; c < std::min(C, c1 * grid.col_channels); ++c) {
      for (int64_t ih = b.ih0; ih < b.ih0 + b.H; ++ih)
        for (int64_t iw = 0; iw < W; ++iw) rd.add(((n * C + c) * H + ih) * W + iw, lane);
      for (int64_t m = 0; m < M; ++m)
        std::fill(out.begin() + ((n * C * M + c * M + m) * OH + oh0) * OW,
                  out.begin() + ((n * C * M + c * M + m) * OH + oh1) * OW, int8_t(lane));
    }
  };
  if (by_channels) {  // parallel_for over N·cols units of a whole plane each
    t.split = "dw channels";
    const int64_t units = N * grid.cols, chunks = plan_chunks(units, grid.per_cell * double(OH), threads);
    for (int64_t u = 0; u < units; ++u) {
      const int lane = int(detail::lane_of_chunk(chunks, threads, part_of(units, chunks, u)));
      piece(lane, u / grid.cols, 0, OH, u % grid.cols, u % grid.cols + 1);
    }
    return;
  }
  const qk::DwSplit d = qk::dw_split(N, OH, H, KH, p.sh, p.ph, p.dh, grid.cols, grid.per_cell, threads);
  if (d.mode == qk::DwSplit::bands) {
    t.split = "dw bands";
    const int64_t chunks = d.split.m_parts * d.split.n_parts;
    for (int64_t c = 0; c < chunks; ++c) {
      const int lane = int(detail::lane_of_chunk(chunks, threads, c));
      const auto [r0, r1] = detail::lane_range(N * OH, d.split.m_parts, c / d.split.n_parts);
      const auto [k0, k1] = detail::lane_range(grid.cols, d.split.n_parts, c % d.split.n_parts);
      for (int64_t r = r0; r < r1;) {
        const int64_t n = r / OH, oh0 = r % OH, oh1 = std::min(OH, oh0 + (r1 - r));
        piece(lane, n, oh0, oh1, k0, k1);
        r += oh1 - oh0;
      }
    }
    return;
  }
  t.split = d.mode == qk::DwSplit::columns ? "dw columns" : "dw whole";
  const int64_t chunks = d.mode == qk::DwSplit::columns ? d.column_chunks : 1;
  for (int64_t k = 0; k < grid.cols; ++k) {
    const int lane = int(detail::lane_of_chunk(chunks, threads, part_of(grid.cols, chunks, k)));
    for (int64_t n = 0; n < N; ++n) piece(lane, n, 0, OH, k, k + 1);
  }
}

// Any other conv: the model of its kernels described in the header.
void pixel_split(const Value& x, const Value& y, const Value& w, const ops::Conv2dParams& p, int threads,
                 const Reads& rd, Owners& out, NodeTraffic& t) {
  t.split = "pixels";
  const int64_t N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3];
  const int64_t OC = y.shape[1], OH = y.shape[2], OW = y.shape[3], P = OH * OW, KH = w.shape[2], KW = w.shape[3];
  auto lane_of_pixel = [&](int64_t n, int64_t q) { return int(detail::lane_of_chunk(N * P, threads, n * P + q)); };
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oc = 0; oc < OC; ++oc)
      for (int64_t q = 0; q < P; ++q) out[size_t((n * OC + oc) * P + q)] = int8_t(lane_of_pixel(n, q));
  const bool direct = KH == 1 && KW == 1 && p.sh == 1 && p.sw == 1 && p.ph == 0 && p.pw == 0;
  if (direct) {  // read in place, each pixel by the thread of its tile (int8 and fp32)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < C; ++c)
        for (int64_t i = 0; i < H * W; ++i) rd.add((n * C + c) * H * W + i, lane_of_pixel(n, i));
    return;
  }
  // Any other conv: each thread copies, inside the conv's region, the input rows its own output
  // rows read, halo rows included (kernels/own_rows.h: the fp32 padded or subsampled planes, the
  // int8 word or phase planes), and reads only its copy.
  for (int64_t n = 0; n < N; ++n)
    for (int64_t q0 = 0; q0 < P;) {
      const int lane = lane_of_pixel(n, q0);
      int64_t q1 = q0 + 1;
      while (q1 < P && lane_of_pixel(n, q1) == lane) ++q1;
      const int64_t oy0 = q0 / OW, oy1 = (q1 - 1) / OW;
      const int64_t ih0 = std::max<int64_t>(0, oy0 * p.sh - p.ph);
      const int64_t ih1 = std::min<int64_t>(H, oy1 * p.sh - p.ph + (KH - 1) * p.dh + 1);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t ih = ih0; ih < ih1; ++ih)
          for (int64_t iw = 0; iw < W; ++iw) rd.add(((n * C + c) * H + ih) * W + iw, lane);
      q0 = q1;
    }
}

}  // namespace

std::vector<NodeTraffic> lane_traffic(const Graph& g, int threads, bool dw_by_channels) {
  threads = std::max(1, threads);
  std::vector<Owners> owners(g.values.size());
  std::vector<NodeTraffic> rows;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& nd = g.nodes[i];
    const bool conv = (nd.op == "conv2d" || nd.op == "qconv2d") && nd.inputs.size() >= 2 && nd.outputs.size() == 1;
    const Value* x = conv ? &g.values[size_t(nd.inputs[0])] : nullptr;
    const Value* w = conv ? &g.values[size_t(nd.inputs[1])] : nullptr;
    const Value* y = conv ? &g.values[size_t(nd.outputs[0])] : nullptr;
    if (conv && x->shape.size() == 4 && w->shape.size() == 4 && y->shape.size() == 4) {
      const ops::Conv2dParams p = ops::conv2d_from_json(nd.attrs, "lane_traffic: node " + nd.name);
      NodeTraffic t;
      t.node = int32_t(i), t.name = nd.name, t.op = nd.op;
      const Owners& in = owners[size_t(nd.inputs[0])];
      const Reads rd{in.empty() ? nullptr : &in, &t};
      Owners& out = owners[size_t(nd.outputs[0])];
      out.assign(size_t(shape_numel(y->shape)), int8_t(0));
      const bool int8 = nd.op == "qconv2d";
      if (p.groups > 1 && p.groups == x->shape[1] && w->shape[1] == 1)
        depthwise(*x, *y, *w, p, int8, threads, dw_by_channels, rd, out, t);
      else
        pixel_split(*x, *y, *w, p, threads, rd, out, t);
      rows.push_back(std::move(t));
      continue;
    }
    for (int32_t o : nd.outputs) {  // elementwise: contiguous shares of the flat tensor
      const int64_t n = shape_numel(g.values[size_t(o)].shape);
      if (n <= 0) continue;
      Owners& out = owners[size_t(o)];
      out.resize(size_t(n));
      for (int64_t e = 0; e < n; ++e) out[size_t(e)] = int8_t(detail::lane_of_chunk(n, threads, e));
    }
  }
  return rows;
}

}  // namespace finch::runtime
