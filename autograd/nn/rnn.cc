// LSTM, GRU, LSTMCell, GRUCell: parameters with torch's names and the layer/direction loop over
// the one-node-per-layer-direction primitives of autograd/functions_rnn.cc.
#include "autograd/nn/rnn.h"

#include <cmath>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/nn/init.h"

namespace finch::nn {
namespace {

void init_uniform(const std::vector<Tensor*>& params, int64_t hidden, Generator* gen) {
  const double bound = 1.0 / std::sqrt(double(hidden));
  for (Tensor* p : params)
    if (p->defined()) init::uniform_(*p, -bound, bound, gen);
}

void check_sizes(const char* who, int64_t input_size, int64_t hidden_size) {
  if (input_size < 1 || hidden_size < 1)
    fail(who, ": expected input_size and hidden_size >= 1, found input_size=", input_size,
         ", hidden_size=", hidden_size);
}

}  // namespace

RNNBase::RNNBase(std::string mode, int64_t gates, int64_t in, int64_t hidden,
                 const RnnOptions& o, Generator* gen)
    : input_size(in), hidden_size(hidden), num_layers(o.num_layers), bias(o.bias),
      batch_first(o.batch_first), dropout(o.dropout), bidirectional(o.bidirectional),
      proj_size(o.proj_size), mode_(std::move(mode)) {
  const char* who = mode_.c_str();
  check_sizes(who, in, hidden);
  if (num_layers < 1) fail(who, ": expected num_layers >= 1, found ", num_layers);
  if (!(dropout >= 0.0 && dropout <= 1.0))
    fail(who, ": expected dropout in [0, 1], found ", dropout);
  if (proj_size < 0 || (proj_size > 0 && proj_size >= hidden))
    fail(who, ": expected proj_size in 0..hidden_size-1 (", hidden - 1, "), found ", proj_size);
  if (proj_size > 0 && gates != 4) fail(who, ": proj_size is supported only by LSTM, found ", proj_size);
  const int64_t D = bidirectional ? 2 : 1, P = proj_size > 0 ? proj_size : hidden;
  const int64_t G = gates * hidden;
  for (int64_t l = 0; l < num_layers; ++l)
    for (int64_t d = 0; d < D; ++d) {
      const std::string sfx = "_l" + std::to_string(l) + (d == 1 ? "_reverse" : "");
      const int64_t layer_in = l == 0 ? in : P * D;
      Weights w;
      // torch's order: weight_ih, weight_hh, bias_ih, bias_hh, weight_hr.
      w.w_ih = register_parameter("weight_ih" + sfx, empty({G, layer_in}));
      w.w_hh = register_parameter("weight_hh" + sfx, empty({G, P}));
      if (bias) {
        w.b_ih = register_parameter("bias_ih" + sfx, empty({G}));
        w.b_hh = register_parameter("bias_hh" + sfx, empty({G}));
      }
      if (proj_size > 0) w.w_hr = register_parameter("weight_hr" + sfx, empty({P, hidden}));
      weights.push_back(w);
    }
  reset_parameters(gen);
  dropout_generator.manual_seed((gen ? *gen : default_generator()).next_u64());
}

void RNNBase::reset_parameters(Generator* gen) {
  for (Weights& w : weights) init_uniform({&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh, &w.w_hr}, hidden_size, gen);
}

RnnOutput RNNBase::forward_seq(const Tensor& x_in, const Tensor& lengths, const RnnState& init) {
  // Graph capture sees the layer as one lstm/gru node per layer (runtime/ops.md), not the
  // transposes, stacks and squeezes inside.
  autograd::CaptureScope cap;
  const char* who = mode_.c_str();
  const bool lstm = mode_ == "LSTM";
  const int64_t D = bidirectional ? 2 : 1, P = proj_size > 0 ? proj_size : hidden_size;
  if (!x_in.defined() || (x_in.dim() != 3 && x_in.dim() != 2) || x_in.size(-1) != input_size)
    fail(who, ": expected input of shape ", batch_first ? "[B, T, " : "[T, B, ", input_size,
         "] (or unbatched [T, ", input_size, "]), found ",
         x_in.defined() ? shape_str(x_in.shape()) : std::string("an undefined tensor"));
  const bool unbatched = x_in.dim() == 2;
  if (unbatched && lengths.defined())
    fail(who, ": lengths need a batched input [B, T, IN] or [T, B, IN], found unbatched ",
         shape_str(x_in.shape()));
  RnnState st = init;
  if (unbatched) {
    if (st.h.defined()) st.h = unsqueeze(st.h, 1);
    if (st.c.defined()) st.c = unsqueeze(st.c, 1);
  }
  // Time-major inside: the primitives step along dim 0.
  Tensor x = unbatched ? unsqueeze(x_in, 1) : batch_first ? transpose(x_in, 0, 1) : x_in;
  const int64_t B = x.size(1);
  if (st.h.defined() && st.h.shape() != Shape{num_layers * D, B, P})
    fail(who, ": expected the initial h of shape ", shape_str({num_layers * D, B, P}), ", found ",
         shape_str(st.h.shape()));
  if (!lstm && st.c.defined()) fail(who, ": a GRU has no cell state, but an initial c was given");
  if (lstm && st.c.defined() && st.c.shape() != Shape{num_layers * D, B, hidden_size})
    fail(who, ": expected the initial c of shape ", shape_str({num_layers * D, B, hidden_size}),
         ", found ", shape_str(st.c.shape()));
  if (cap.active() && (unbatched || st.h.defined() || st.c.defined()))
    fail(who, ": graph capture records a batched input without initial states; found ",
         unbatched ? "an unbatched input" : "an initial state");
  std::vector<Tensor> hs, cs, layer_io{x_in};  // layer_io: each layer's input, then the output
  for (int64_t l = 0; l < num_layers; ++l) {
    std::vector<Tensor> ys;
    for (int64_t d = 0; d < D; ++d) {
      const int64_t idx = l * D + d;
      const Weights& w = weights[size_t(idx)];
      const Tensor h0 = st.h.defined() ? select(st.h, 0, idx) : Tensor();
      RnnLayerOutput r;
      if (layer_override) {
        r = layer_override(idx, x, h0, lstm && st.c.defined() ? select(st.c, 0, idx) : Tensor(), lengths, d == 1);
        if (lstm) cs.push_back(r.c_n);
      } else if (lstm) {
        const Tensor c0 = st.c.defined() ? select(st.c, 0, idx) : Tensor();
        r = lstm_layer(x, h0, c0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, w.w_hr, lengths, d == 1);
        cs.push_back(r.c_n);
      } else {
        r = gru_layer(x, h0, w.w_ih, w.w_hh, w.b_ih, w.b_hh, lengths, d == 1);
      }
      ys.push_back(r.y);
      hs.push_back(r.h_n);
    }
    x = D == 2 ? cat(ys, 2) : ys[0];
    if (l + 1 < num_layers && dropout > 0.0 && is_training())
      x = finch::dropout(x, dropout, true, &dropout_generator);
    if (cap.active()) layer_io.push_back(batch_first ? transpose(x, 0, 1) : x);
  }
  RnnOutput out;
  out.output = unbatched ? squeeze(x, 1) : batch_first ? transpose(x, 0, 1) : x;
  out.state.h = stack(hs, 0);
  if (lstm) out.state.c = stack(cs, 0);
  if (cap.active()) {
    out.output = layer_io.back();
    record_layers(cap, layer_io, lengths, hs, cs, out);
  }
  if (unbatched) {
    out.state.h = squeeze(out.state.h, 1);
    if (lstm) out.state.c = squeeze(out.state.c, 1);
  }
  return out;
}

void RNNBase::record_layers(const autograd::CaptureScope& cap, const std::vector<Tensor>& layer_io,
                            const Tensor& lengths, const std::vector<Tensor>& hs, const std::vector<Tensor>& cs,
                            RnnOutput& out) const {
  const bool lstm = mode_ == "LSTM";
  const int64_t D = bidirectional ? 2 : 1;
  std::vector<Tensor> h_layers, c_layers;
  for (int64_t l = 0; l < num_layers; ++l) {
    // Inputs as op_schema_rnn.cc lists them: x, lengths, then per direction w_ih, w_hh, b_ih,
    // b_hh (and the LSTM's w_hr slot).
    std::vector<Tensor> in{layer_io[size_t(l)], lengths};
    std::vector<Tensor> h_dir, c_dir;
    for (int64_t d = 0; d < D; ++d) {
      const Weights& w = weights[size_t(l * D + d)];
      for (const Tensor* t : {&w.w_ih, &w.w_hh, &w.b_ih, &w.b_hh}) in.push_back(*t);
      if (lstm) in.push_back(w.w_hr);
      h_dir.push_back(hs[size_t(l * D + d)]);
      if (lstm) c_dir.push_back(cs[size_t(l * D + d)]);
    }
    h_layers.push_back(num_layers == 1 ? out.state.h : stack(h_dir, 0));
    if (lstm) c_layers.push_back(num_layers == 1 ? out.state.c : stack(c_dir, 0));
    std::vector<Tensor> outs{layer_io[size_t(l + 1)], h_layers.back()};
    if (lstm) outs.push_back(c_layers.back());
    cap.record(lstm ? "lstm" : "gru", in, outs, {{"batch_first", batch_first}});
  }
  if (num_layers == 1) return;
  // h_n / c_n of all layers: the layers' [D, B, P] states one after the other along dim 0.
  out.state.h = cat(h_layers, 0);
  cap.record("cat", h_layers, {out.state.h}, {{"dim", 0}});
  if (lstm) {
    out.state.c = cat(c_layers, 0);
    cap.record("cat", c_layers, {out.state.c}, {{"dim", 0}});
  }
}

// ---- cells ----

LSTMCell::LSTMCell(int64_t in, int64_t hidden, bool with_bias, Generator* gen)
    : input_size(in), hidden_size(hidden) {
  check_sizes("LSTMCell", in, hidden);
  weight_ih = register_parameter("weight_ih", empty({4 * hidden, in}));
  weight_hh = register_parameter("weight_hh", empty({4 * hidden, hidden}));
  bias_ih = register_parameter("bias_ih", with_bias ? empty({4 * hidden}) : Tensor());
  bias_hh = register_parameter("bias_hh", with_bias ? empty({4 * hidden}) : Tensor());
  reset_parameters(gen);
}

void LSTMCell::reset_parameters(Generator* gen) {
  init_uniform({&weight_ih, &weight_hh, &bias_ih, &bias_hh}, hidden_size, gen);
}

namespace {
// Batches an unbatched cell input ([IN] -> [1, IN]) and checks the sizes; returns the batch.
Tensor cell_input(const char* who, const Tensor& x, int64_t in) {
  if (!x.defined() || (x.dim() != 1 && x.dim() != 2) || x.size(-1) != in)
    fail(who, ": expected input of shape [B, ", in, "] or [", in, "], found ",
         x.defined() ? shape_str(x.shape()) : std::string("an undefined tensor"));
  return x.dim() == 1 ? unsqueeze(x, 0) : x;
}
Tensor cell_state(const char* who, const char* what, const Tensor& s, bool unbatched, int64_t B,
                  int64_t H, DType dt) {
  if (!s.defined()) return zeros({B, H}, dt);
  const Tensor t = unbatched && s.dim() == 1 ? unsqueeze(s, 0) : s;
  if (t.shape() != Shape{B, H})
    fail(who, ": expected ", what, " of shape ", shape_str(unbatched ? Shape{H} : Shape{B, H}),
         ", found ", shape_str(s.shape()));
  return t;
}
}  // namespace

RnnState LSTMCell::forward_state(const Tensor& x_in, const RnnState& state) {
  const Tensor x = cell_input("LSTMCell", x_in, input_size);
  const bool unbatched = x_in.dim() == 1;
  const int64_t B = x.size(0);
  const Tensor h = cell_state("LSTMCell", "h", state.h, unbatched, B, hidden_size, x.dtype());
  const Tensor c = cell_state("LSTMCell", "c", state.c, unbatched, B, hidden_size, x.dtype());
  auto [h1, c1] = lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh);
  if (unbatched) return {squeeze(h1, 0), squeeze(c1, 0)};
  return {h1, c1};
}

GRUCell::GRUCell(int64_t in, int64_t hidden, bool with_bias, Generator* gen)
    : input_size(in), hidden_size(hidden) {
  check_sizes("GRUCell", in, hidden);
  weight_ih = register_parameter("weight_ih", empty({3 * hidden, in}));
  weight_hh = register_parameter("weight_hh", empty({3 * hidden, hidden}));
  bias_ih = register_parameter("bias_ih", with_bias ? empty({3 * hidden}) : Tensor());
  bias_hh = register_parameter("bias_hh", with_bias ? empty({3 * hidden}) : Tensor());
  reset_parameters(gen);
}

void GRUCell::reset_parameters(Generator* gen) {
  init_uniform({&weight_ih, &weight_hh, &bias_ih, &bias_hh}, hidden_size, gen);
}

Tensor GRUCell::forward_hidden(const Tensor& x_in, const Tensor& h_in) {
  const Tensor x = cell_input("GRUCell", x_in, input_size);
  const bool unbatched = x_in.dim() == 1;
  const int64_t B = x.size(0);
  const Tensor h = h_in.defined() ? cell_state("GRUCell", "h", h_in, unbatched, B, hidden_size, x.dtype())
                                  : Tensor();
  // One step of the sequence primitive: the cell and the layer share the GRU kernels.
  const Tensor h1 = gru_layer(unsqueeze(x, 0), h, weight_ih, weight_hh, bias_ih, bias_hh).h_n;
  return unbatched ? squeeze(h1, 0) : h1;
}

}  // namespace finch::nn
