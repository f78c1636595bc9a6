// The quantization debugger's recurrent rows (series_rnn_debug.h).
#include "apps/lib/series_rnn_debug.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "apps/lib/sequence_program.h"
#include "autograd/functional.h"
#include "kernels/qs8_rnn.h"
#include "ops/rnn_seq.h"

namespace finch::apps {
namespace {

// One row's sums over the batches.
struct Row {
  std::string name;
  double se = 0, scale = 1;
  int64_t n = 0;
  bool split = false;             // the LSTM's error by source
  double se_w = 0, se_h = 0, se_wh = 0, se_wih = 0, se_whh = 0;
  double se_q[4] = {0, 0, 0, 0};  // the total by quarter of each sample's steps
  int64_t n_q[4] = {0, 0, 0, 0};
  double pre_absmax[4] = {0, 0, 0, 0};  // float pre-activations per gate (i, f, g, o)
  int64_t pre_sat[4] = {0, 0, 0, 0}, pre_n = 0;
};

// A float LSTM (PyTorch's cell, gate order i, f, g, o) over x [T, B, IN] forward in time, each
// sample from zero states over its first len[b] steps (y 0 after them). `round_h`: h is put on
// its int8 grid (s, z) every step, as the integer cell's output is. Collects the pre-activation
// statistics into `row` when given.
std::vector<float> float_lstm(const std::vector<float>& x, const std::vector<int64_t>& len, int64_t T, int64_t B,
                              int64_t IN, int64_t H, const std::vector<float>& wih, const std::vector<float>& whh,
                              const std::vector<float>& bias, bool round_h, float s, int32_t z, Row* row) {
  std::vector<float> y(static_cast<size_t>(T * B * H), 0.0f), h(static_cast<size_t>(H)), c(static_cast<size_t>(H)),
      pre(static_cast<size_t>(4 * H));
  auto sigmoid = [](double v) { return 1.0 / (1.0 + std::exp(-v)); };
  for (int64_t b = 0; b < B; ++b) {
    std::fill(h.begin(), h.end(), 0.0f), std::fill(c.begin(), c.end(), 0.0f);
    for (int64_t t = 0; t < std::min(T, len[size_t(b)]); ++t) {
      const float* xt = &x[size_t((t * B + b) * IN)];
      for (int64_t r = 0; r < 4 * H; ++r) {
        double a = bias[size_t(r)];
        const float* wi = &wih[size_t(r * IN)];
        const float* wh = &whh[size_t(r * H)];
        for (int64_t k = 0; k < IN; ++k) a += double(wi[k]) * xt[k];
        for (int64_t k = 0; k < H; ++k) a += double(wh[k]) * h[size_t(k)];
        pre[size_t(r)] = float(a);
        if (row) {
          const int gate = int(r / H);
          row->pre_absmax[gate] = std::max(row->pre_absmax[gate], std::fabs(a));
          row->pre_sat[gate] += std::fabs(a) > 8.0;
        }
      }
      if (row) row->pre_n += H;
      for (int64_t j = 0; j < H; ++j) {
        const double i = sigmoid(pre[size_t(j)]), f = sigmoid(pre[size_t(H + j)]), g = std::tanh(pre[size_t(2 * H + j)]),
                     o = sigmoid(pre[size_t(3 * H + j)]);
        const double cn = f * c[size_t(j)] + i * g;
        double hn = o * std::tanh(cn);
        if (round_h) hn = (std::clamp(std::nearbyint(hn / s) + z, -128.0, 127.0) - z) * double(s);
        c[size_t(j)] = float(cn);
        y[size_t((t * B + b) * H + j)] = float(hn);
      }
      std::copy(y.begin() + (t * B + b) * H, y.begin() + (t * B + b + 1) * H, h.begin());
    }
  }
  return y;
}

std::vector<float> floats_of(const Tensor& t) { return t.defined() ? t.contiguous().to_vector<float>() : std::vector<float>(); }

// A weight's int8 codes in the program, dequantized per row.
std::vector<float> dequantized_rows(const runtime::Value& v, const Tensor& codes) {
  const std::vector<int8_t> q = codes.contiguous().to_vector<int8_t>();
  const int64_t rows = codes.size(0), cols = codes.size(1);
  std::vector<float> w(q.size());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t k = 0; k < cols; ++k) w[size_t(r * cols + k)] = float(q[size_t(r * cols + k)]) * v.quant->scale[size_t(r)];
  return w;
}

// Time-major codes [T, B, F] of one direction in its own time order (reversed on each sample's
// valid steps for a reverse direction), dequantized.
std::vector<float> directional(const Tensor& codes_tbf, const std::vector<int64_t>& len, bool reverse,
                               const runtime::QuantInfo& q) {
  Tensor c = codes_tbf.contiguous();
  if (reverse) {
    Tensor r = empty(c.shape(), DType::i8);
    quant::kernels::reverse_steps(c.size(0), c.size(1), c.size(2), c.data<int8_t>(), len.data(), r.data<int8_t>());
    c = r;
  }
  const std::vector<int8_t> v = c.to_vector<int8_t>();
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = (float(v[i]) - float(q.zero_point[0])) * q.scale[0];
  return out;
}

// The error split of one qlstm node (no projection) on one batch, into `r`.
void lstm_split(Row& r, const runtime::Graph& g, const runtime::Node& q, const std::vector<Tensor>& all,
                const std::vector<float>& wih, const std::vector<float>& whh, const Tensor& bih, const Tensor& bhh,
                const std::vector<int64_t>& lv, bool reverse, bool bf) {
  const Tensor xc = bf ? all[size_t(q.inputs[0])].transpose(0, 1) : all[size_t(q.inputs[0])];
  const Tensor yc = bf ? all[size_t(q.outputs[0])].transpose(0, 1) : all[size_t(q.outputs[0])];
  const runtime::QuantInfo &xq = *g.values[size_t(q.inputs[0])].quant, &yq = *g.values[size_t(q.outputs[0])].quant;
  const int64_t T = xc.size(0), B = xc.size(1), IN = xc.size(2), H = yc.size(2);
  const std::vector<float> x = directional(xc, lv, reverse, xq), yi = directional(yc, lv, reverse, yq);
  std::vector<float> bias(size_t(4 * H), 0.0f);
  for (const Tensor& b : {bih, bhh})
    if (b.defined()) {
      const std::vector<float> v = floats_of(b);
      for (size_t k = 0; k < bias.size(); ++k) bias[k] += v[k];
    }
  const std::vector<float> wq_ih = dequantized_rows(g.values[size_t(q.inputs[2])], all[size_t(q.inputs[2])]),
                           wq_hh = dequantized_rows(g.values[size_t(q.inputs[3])], all[size_t(q.inputs[3])]);
  const float s = yq.scale[0];
  const int32_t z = yq.zero_point[0];
  const std::vector<float> f = float_lstm(x, lv, T, B, IN, H, wih, whh, bias, false, s, z, &r),
                           fw = float_lstm(x, lv, T, B, IN, H, wq_ih, wq_hh, bias, false, s, z, nullptr),
                           fh = float_lstm(x, lv, T, B, IN, H, wih, whh, bias, true, s, z, nullptr),
                           fwh = float_lstm(x, lv, T, B, IN, H, wq_ih, wq_hh, bias, true, s, z, nullptr),
                           fih = float_lstm(x, lv, T, B, IN, H, wq_ih, whh, bias, false, s, z, nullptr),
                           fhh = float_lstm(x, lv, T, B, IN, H, wih, wq_hh, bias, false, s, z, nullptr);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t L = std::min(T, lv[size_t(b)]);
    for (int64_t t = 0; t < L; ++t) {
      const int quarter = int(std::min<int64_t>(3, 4 * t / std::max<int64_t>(L, 1)));
      for (int64_t j = 0; j < H; ++j) {
        const size_t k = size_t((t * B + b) * H + j);
        auto sq = [](double d) { return d * d; };
        r.se_w += sq(double(fw[k]) - f[k]), r.se_h += sq(double(fh[k]) - f[k]), r.se_wh += sq(double(fwh[k]) - f[k]);
        r.se_wih += sq(double(fih[k]) - f[k]), r.se_whh += sq(double(fhh[k]) - f[k]);
        r.se_q[quarter] += sq(double(yi[k]) - f[k]), ++r.n_q[quarter];
      }
    }
  }
  r.split = true;
}

}  // namespace

nlohmann::json recurrent_errors(const runtime::Graph& g32, runtime::Program& p, const std::vector<data::Batch>& calib,
                                int64_t T) {
  const runtime::Graph& g = p.graph();
  std::map<std::string, const runtime::Node*> float_node;
  for (const runtime::Node& n : g32.nodes)
    if (n.op == "lstm" || n.op == "gru") float_node[g32.values[size_t(n.outputs[0])].name] = &n;
  std::map<int32_t, int32_t> producer;  // value -> node index
  for (size_t i = 0; i < g.nodes.size(); ++i)
    for (int32_t v : g.nodes[i].outputs) producer[v] = int32_t(i);
  std::vector<Row> rows;
  std::map<size_t, size_t> row_of;
  for (size_t b = 0; b < calib.size() && b < 4; ++b) {
    const auto [x, len] = padded_to(calib[b].images, calib[b].lengths, T);
    if (std::none_of(g.nodes.begin(), g.nodes.end(),
                     [](const runtime::Node& n) { return n.op == "qlstm" || n.op == "qgru"; }))
      break;
    const std::vector<Tensor> all = g.inputs.size() == 1 ? p.run_all({x}) : p.run_all({x, len});
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const runtime::Node& q = g.nodes[i];
      if (q.op != "qlstm" && q.op != "qgru") continue;
      // The node's own lengths (a conv stack before it may have shortened the input's).
      const Tensor ln = q.inputs.size() > 1 && q.inputs[1] >= 0 ? all[size_t(q.inputs[1])] : len;
      const bool lstm = q.op == "qlstm", reverse = q.attrs.value("reverse", false),
                 bf = q.attrs.value("batch_first", false);
      std::string base = g.values[size_t(q.outputs[0])].name;  // <y>.y_q, <y>.forward.y_q or <y>.reverse.y_q
      for (const char* suffix : {".y_q", ".forward", ".reverse"})
        if (base.size() > strlen(suffix) && base.compare(base.size() - strlen(suffix), strlen(suffix), suffix) == 0)
          base.resize(base.size() - strlen(suffix));
      const auto fn = float_node.find(base);
      const auto qn = producer.find(q.inputs[0]);
      if (fn == float_node.end() || qn == producer.end() || g.nodes[size_t(qn->second)].op != "quantize") continue;
      const runtime::Node& f = *fn->second;
      const size_t o = 2 + (lstm ? 5 : 4) * (reverse ? 1 : 0);
      auto w = [&](size_t k) {
        return o + k < f.inputs.size() && f.inputs[o + k] >= 0 ? g32.values[size_t(f.inputs[o + k])].data : Tensor();
      };
      // The layer's int8 input, dequantized: the float cell sees what the integer one sees.
      const runtime::QuantInfo& xq = *g.values[size_t(q.inputs[0])].quant;
      const Tensor xf = (all[size_t(q.inputs[0])].to(DType::f32) - float(xq.zero_point[0])) * xq.scale[0];
      const Tensor xt = (bf ? xf.transpose(0, 1) : xf).contiguous();
      const ops::RnnWeights rw{w(0), w(1), w(2), w(3), lstm ? w(4) : Tensor()};  // w_hr: a projected LSTM
      const Tensor yf = lstm ? ops::lstm_seq(xt, Tensor(), Tensor(), rw, ln, reverse).y
                             : ops::gru_seq(xt, Tensor(), rw, ln, reverse).y;  // [T, B, H]
      const runtime::QuantInfo& yq = *g.values[size_t(q.outputs[0])].quant;
      const Tensor yc = all[size_t(q.outputs[0])];
      const Tensor yi =
          ((bf ? yc.transpose(0, 1) : yc).contiguous().to(DType::f32) - float(yq.zero_point[0])) * yq.scale[0];
      const std::vector<float> a = yf.contiguous().to_vector<float>(), c = yi.contiguous().to_vector<float>();
      const std::vector<int64_t> lv = ln.contiguous().to_vector<int64_t>();
      const int64_t Ts = yf.size(0), B = yf.size(1), H = yf.size(2);
      auto [it, fresh] = row_of.emplace(i, rows.size());
      if (fresh) rows.push_back({base + (reverse ? " (reverse)" : ""), 0, yq.scale[0], 0});
      Row& r = rows[it->second];
      for (int64_t t = 0; t < Ts; ++t)
        for (int64_t bb = 0; bb < B; ++bb) {
          if (t >= lv[size_t(bb)]) continue;
          for (int64_t h = 0; h < H; ++h) {
            const double d = double(a[size_t((t * B + bb) * H + h)]) - c[size_t((t * B + bb) * H + h)];
            r.se += d * d, ++r.n;
          }
        }
      if (lstm && !w(4).defined())
        lstm_split(r, g, q, all, floats_of(w(0)), floats_of(w(1)), w(2), w(3), lv, reverse, bf);
    }
  }
  nlohmann::json out = nlohmann::json::array();
  for (const Row& r : rows) {
    auto ratio = [&](double se, int64_t n) { return n ? std::sqrt(se / double(n)) / r.scale : 0.0; };
    const double total = ratio(r.se, r.n);
    std::printf("%-32s rmse/scale %.3f%s\n", r.name.c_str(), total, total > 0.7 ? "  <-- above 0.7" : "");
    nlohmann::json row = {{"layer", r.name}, {"rmse_over_scale", total}, {"scale", r.scale}, {"elements", r.n}};
    if (r.split) {
      const double w = ratio(r.se_w, r.n), h = ratio(r.se_h, r.n), wh = ratio(r.se_wh, r.n),
                   wih = ratio(r.se_wih, r.n), whh = ratio(r.se_whh, r.n);
      std::vector<double> quarters;
      for (int k = 0; k < 4; ++k) quarters.push_back(ratio(r.se_q[k], r.n_q[k]));
      nlohmann::json gates = nlohmann::json::object();
      const char* names[4] = {"i", "f", "g", "o"};
      for (int k = 0; k < 4; ++k)
        gates[names[k]] = {{"pre_absmax", r.pre_absmax[k]},
                           {"beyond_8", r.pre_n ? double(r.pre_sat[k]) / double(r.pre_n) : 0.0}};
      std::printf("%-32s   from: int8 weights %.3f (w_ih alone %.3f, w_hh alone %.3f), h rounding %.3f, both %.3f\n", "",
                  w, wih, whh, h, wh);
      std::printf("%-32s   by quarter of the steps %.3f %.3f %.3f %.3f\n", "", quarters[0], quarters[1], quarters[2],
                  quarters[3]);
      std::printf("%-32s   pre-activation max |.| i %.1f f %.1f g %.1f o %.1f; beyond 8: %.4f %.4f %.4f %.4f\n", "",
                  r.pre_absmax[0], r.pre_absmax[1], r.pre_absmax[2], r.pre_absmax[3],
                  double(gates["i"]["beyond_8"]), double(gates["f"]["beyond_8"]), double(gates["g"]["beyond_8"]),
                  double(gates["o"]["beyond_8"]));
      row["sources"] = {{"int8_weights", w}, {"int8_w_ih", wih}, {"int8_w_hh", whh}, {"h_rounding", h},
                        {"weights_and_h", wh}};
      row["by_quarter_of_steps"] = quarters;
      row["gates"] = gates;
    }
    out.push_back(row);
  }
  return out;
}

}  // namespace finch::apps
