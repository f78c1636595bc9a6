// Recurrent layers as torch.nn: LSTM and GRU (multi-layer, bidirectional, batch_first, dropout
// between layers, LSTM proj_size, initial states in, final states out, variable-length batches)
// and LSTMCell / GRUCell. Parameter names, shapes, gate order and registration order are
// PyTorch's, so a torch state_dict loads unchanged.
//
// Shape vocabulary: T steps, B batch, IN input_size, H hidden_size, P = proj_size (or H),
// L num_layers, D = 2 when bidirectional else 1.
//
// Variable-length batches: pass the padded batch and each sample's length (I64 [B], 1..T) to
// forward_seq(). The result is what PyTorch gives for pack_padded_sequence(x, lengths,
// enforce_sorted=False) → LSTM → pad_packed_sequence(total_length=T): padded steps never update
// a sample's state, its output there is 0, h/c are its state at its last valid step, and the
// reverse direction starts at that step. A model implementing nn::LengthAware forwards its
// lengths here, e.g.
//   Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override {
//     RnnOutput r = lstm->forward_seq(embedding->forward(x), lengths);
//     return head->forward(r.state.h.select(0, -1));   // last layer's final h, [B, P]
//   }
// (with bidirectional, cat the last two rows of r.state.h instead).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "autograd/nn/module.h"
#include "framework/random.h"

namespace finch::nn {

// h [L·D, B, P]; c [L·D, B, H] for the LSTM, undefined for the GRU. Undefined h/c = zeros.
struct RnnState {
  Tensor h, c;
};
struct RnnOutput {
  Tensor output;  // [B, T, D·P] when batch_first, else [T, B, D·P]
  RnnState state;
};

// torch's keyword arguments, e.g. nn::LSTM(32, 128, {.num_layers = 2, .bidirectional = true}).
struct RnnOptions {
  int64_t num_layers = 1;
  bool bias = true;
  bool batch_first = false;
  double dropout = 0.0;  // on every layer's output but the last, in training mode only
  bool bidirectional = false;
  int64_t proj_size = 0;  // LSTM only: h = W_hr·h_raw with W_hr [proj_size, H]
};

// What LSTM and GRU share (torch's RNNBase).
class RNNBase : public Module {
 public:
  std::string type_name() const override { return mode_; }
  // x [B, T, IN] (batch_first) or [T, B, IN], or unbatched [T, IN] (states then drop B).
  RnnOutput forward_seq(const Tensor& x, const Tensor& lengths = Tensor(),
                        const RnnState& init = RnnState());
  // The output only, so the layer works in Sequential.
  Tensor forward_impl(const Tensor& x) override { return forward_seq(x).output; }
  // U(−1/√H, 1/√H) for every parameter, in registration order, as torch.
  void reset_parameters(Generator* gen = nullptr);

  int64_t input_size, hidden_size, num_layers;
  bool bias, batch_first;
  double dropout;
  bool bidirectional;
  int64_t proj_size;

  // One layer-direction's parameters (index l·D + d); b_*/w_hr undefined when absent.
  struct Weights {
    Tensor w_ih, w_hh, b_ih, b_hh, w_hr;
  };
  std::vector<Weights> weights;
  // Draws the dropout masks between layers (seeded from the constructor's generator).
  Generator dropout_generator;
  // Set by quant/ (QAT, quant/qat_rnn.h): runs layer-direction `index` in place of lstm_layer /
  // gru_layer, with their arguments (x time-major), so the layer computes the integer cell.
  using LayerOverride = std::function<RnnLayerOutput(int64_t index, const Tensor& x, const Tensor& h0,
                                                     const Tensor& c0, const Tensor& lengths, bool reverse)>;
  LayerOverride layer_override;

 protected:
  RNNBase(std::string mode, int64_t gates, int64_t input_size, int64_t hidden_size,
          const RnnOptions& opt, Generator* gen);

 private:
  std::string mode_;
  // Graph capture: one lstm/gru node per layer (layer_io[l] -> layer_io[l + 1], its [D, B, P]
  // states), and a cat of the layers' states when there are several (out's states become it).
  void record_layers(const autograd::CaptureScope& cap, const std::vector<Tensor>& layer_io,
                     const Tensor& lengths, const std::vector<Tensor>& hs, const std::vector<Tensor>& cs,
                     RnnOutput& out) const;
};

class LSTM : public RNNBase {
 public:
  LSTM(int64_t input_size, int64_t hidden_size, const RnnOptions& opt = {},
       Generator* gen = nullptr)
      : RNNBase("LSTM", 4, input_size, hidden_size, opt, gen) {}
};

class GRU : public RNNBase {
 public:
  GRU(int64_t input_size, int64_t hidden_size, const RnnOptions& opt = {},
      Generator* gen = nullptr)
      : RNNBase("GRU", 3, input_size, hidden_size, opt, gen) {}
};

// torch.nn.LSTMCell: weight_ih [4H, IN], weight_hh [4H, H], bias_ih, bias_hh [4H].
class LSTMCell : public Module {
 public:
  LSTMCell(int64_t input_size, int64_t hidden_size, bool bias = true, Generator* gen = nullptr);
  std::string type_name() const override { return "LSTMCell"; }
  // x [B, IN] or [IN]; state h, c [B, H] (or [H]), undefined = zeros. Returns {h', c'}.
  RnnState forward_state(const Tensor& x, const RnnState& state = RnnState());
  Tensor forward_impl(const Tensor& x) override { return forward_state(x).h; }
  void reset_parameters(Generator* gen = nullptr);

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

// torch.nn.GRUCell: weight_ih [3H, IN], weight_hh [3H, H], bias_ih, bias_hh [3H].
class GRUCell : public Module {
 public:
  GRUCell(int64_t input_size, int64_t hidden_size, bool bias = true, Generator* gen = nullptr);
  std::string type_name() const override { return "GRUCell"; }
  // x [B, IN] or [IN]; h [B, H] (or [H]), undefined = zeros. Returns h'.
  Tensor forward_hidden(const Tensor& x, const Tensor& h = Tensor());
  Tensor forward_impl(const Tensor& x) override { return forward_hidden(x); }
  void reset_parameters(Generator* gen = nullptr);

  int64_t input_size, hidden_size;
  Tensor weight_ih, weight_hh, bias_ih, bias_hh;
};

}  // namespace finch::nn
