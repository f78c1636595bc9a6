// Quantization-aware training of torch-style LSTMs for the static int8 program (the qlstm op):
// observers where the integer cell quantizes (input x, hidden state h, max |c| over every step),
// and a layer whose forward IS the deployed cell — the codes go through kernels::QLstm, the
// operator the program runs, with the cell that kernels::qlstm_calibrate makes of the observed
// ranges and the current weights — so the simulated model equals the program bit for bit by
// construction, not by tolerance. The backward is the float LSTM's (autograd's lstm_layer on
// fake-quantized x and per-row fake-quantized weights), reaching the integer outputs through a
// straight-through node that passes the gradient where the float output was inside h's int8
// range and stops it where the quantizer clamped it (as fake_quant's rule for the CNN units).
//
// Shapes: T steps, B batch, IN input size, H hidden size (the layer's x is time-major inside).
// What the program op runs, and therefore what is simulated: every layer and direction of an
// nn::LSTM, projected (proj_size: m = o·tanh(c') gets its own observed int8 range, W_hr int8 per
// row, as the qlstm op's w_hr) or not, from zero initial states (a reverse direction is the
// forward cell on each sample's reversed steps, as the qlstm op with `reverse` runs it). "layer"
// below indexes layer-directions, l·D + d.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/nn/rnn.h"
#include "ops/rnn_seq.h"
#include "kernels/qs8_gru.h"
#include "kernels/qs8_lstm.h"
#include "runtime/graph.h"

namespace finch::quant {

struct QatLstmOptions {
  // Moving-average constant of the range observers (PyTorch's MovingAverageMinMaxObserver
  // default); the first batch sets the ranges. 0: the minimum and maximum over every batch
  // (post-training calibration, as compile::quantize_static_lstm's).
  double averaging = 0.01;
  // Post-training (float layers, observers on): keep up to this many calibration steps per
  // layer-direction (a deterministic reservoir sample) for round_weights(); 0 keeps none.
  int64_t rounding_steps = 0;
};

// The QAT state of one nn::LSTM: attaching sets its layer_override, destroying (or remove())
// restores the float layer.
class QatLstm {
 public:
  QatLstm(nn::LSTM& lstm, std::string path, QatLstmOptions o = {});
  ~QatLstm();
  QatLstm(const QatLstm&) = delete;
  QatLstm& operator=(const QatLstm&) = delete;

  // Observers update the ranges on every forward while on (train or eval, as the CNN path's).
  void enable_observers(bool on) { observe_ = on; }
  // Off: the float layer (the observers still run when on: post-training calibration).
  void enable_fake_quant(bool on) { fake_quant_ = on; }
  bool observers_enabled() const { return observe_; }
  bool fake_quant_enabled() const { return fake_quant_; }
  void remove();

  const std::string& path() const { return path_; }
  int64_t num_layers() const { return int64_t(ranges_.size()); }
  // Every layer has seen data (the integer cell needs ranges).
  bool ready() const;
  const quant::kernels::QLstmRanges& ranges(int64_t layer) const;
  void set_ranges(int64_t layer, const quant::kernels::QLstmRanges& r);  // e.g. from a checkpoint
  // The deployed cell of `layer` now: qlstm_calibrate(its current weights, its ranges).
  quant::kernels::QLstmCell cell(int64_t layer) const;
  nn::LSTM& module() const { return *lstm_; }
  // Forward calls of layer-directions that ran the integer cell (for tests and reports).
  int64_t integer_calls() const { return integer_calls_; }
  // Output-error rounding (quant/rnn_rounding.h) of every layer-direction's w_ih, w_hh (and b_ih)
  // from the steps kept while calibrating (QatLstmOptions::rounding_steps): the module's float
  // weights become their int8 codes times the row scales, so the cell, the program and a saved
  // simulation all derive those codes. Layers of a projected LSTM keep round to nearest (W_hr
  // too). Returns how many layer-directions were rounded; the kept steps are released.
  int64_t round_weights();
  // Calibration steps kept for layer-direction `layer` so far.
  int64_t rounding_steps_kept(int64_t layer) const;

 private:
  RnnLayerOutput run(int64_t layer, const Tensor& x, const Tensor& h0, const Tensor& c0, const Tensor& lengths,
                     bool reverse);
  void observe(int64_t layer, const Tensor& x, const Tensor& lengths, bool reverse);
  // Keeps the calibration steps of a float pass for round_weights() (qat_rnn_rounding.cc).
  void keep_steps(int64_t layer, const ops::RnnSaved& saved);

  nn::LSTM* lstm_;
  std::string path_;
  QatLstmOptions opt_;
  std::vector<quant::kernels::QLstmRanges> ranges_;
  std::vector<bool> seen_;
  bool observe_ = true, fake_quant_ = true;
  int64_t integer_calls_ = 0;
  struct Kept;  // per layer-direction: the reservoir of (z, a) steps
  std::vector<std::shared_ptr<Kept>> kept_;
};

// The same for an nn::GRU and the qgru op (kernels::QGru, qgru_calibrate of the x and h ranges;
// qgru_calibrate clips h's range to [-1, 1]): the forward is the deployed cell, the backward the
// float GRU's through a straight-through node clipped at h's range. Any direction, zero h0.
class QatGru {
 public:
  QatGru(nn::GRU& gru, std::string path, QatLstmOptions o = {});
  ~QatGru();
  QatGru(const QatGru&) = delete;
  QatGru& operator=(const QatGru&) = delete;
  void enable_observers(bool on) { observe_ = on; }
  void enable_fake_quant(bool on) { fake_quant_ = on; }
  void remove();
  const std::string& path() const { return path_; }
  int64_t num_layers() const { return int64_t(ranges_.size()); }
  bool ready() const;
  const quant::kernels::QGruRanges& ranges(int64_t layer) const;
  void set_ranges(int64_t layer, const quant::kernels::QGruRanges& r);  // e.g. from a checkpoint
  quant::kernels::QGruCell cell(int64_t layer) const;
  nn::GRU& module() const { return *gru_; }
  int64_t integer_calls() const { return integer_calls_; }

 private:
  RnnLayerOutput run(int64_t layer, const Tensor& x, const Tensor& h0, const Tensor& lengths, bool reverse);

  nn::GRU* gru_;
  std::string path_;
  QatLstmOptions opt_;
  std::vector<quant::kernels::QGruRanges> ranges_;
  std::vector<bool> seen_;
  bool observe_ = true, fake_quant_ = true;
  int64_t integer_calls_ = 0;
};

// Attaches a QatGru to every nn::GRU under `model` (module path order).
std::vector<std::unique_ptr<QatGru>> prepare_qat_gru(nn::Module& model, QatLstmOptions o = {});
// Convert as lower_qat_lstm: gru nodes holding a QAT GRU's weights become quantize → qgru →
// dequantize with its ranges.
int lower_qat_gru(runtime::Graph& g, const std::vector<std::unique_ptr<QatGru>>& q);

// Per-row int8 fake quantization of every nn::Embedding's weight under `model`: the codes and
// scales of the program's qembedding (kernels::quantize_matrix, symmetric narrow per row), so the
// gathered rows equal qembedding's float(q)·s bit for bit; straight-through gradient. Graph
// capture sees the float embedding (compile::quantize_embeddings lowers it). Detaches on
// destruction.
class QatEmbeddings {
 public:
  explicit QatEmbeddings(nn::Module& model);
  ~QatEmbeddings();
  QatEmbeddings(const QatEmbeddings&) = delete;
  QatEmbeddings& operator=(const QatEmbeddings&) = delete;
  int64_t count() const { return int64_t(modules_.size()); }

 private:
  std::vector<nn::Module*> modules_;
};

// Attaches a QatLstm to every nn::LSTM under `model` (module path order). GRUs: prepare_qat_gru.
std::vector<std::unique_ptr<QatLstm>> prepare_qat_lstm(nn::Module& model, QatLstmOptions o = {});

// The ranges of the QAT layers as safetensors-style entries, for checkpoints and finch verify's
// simulated models (quant/qat_rnn_state.cc); load checks every number and names `file`:
//   LSTM "<path>.qat_ranges_l<k>" = f32 [5] (x_lo, x_hi, h_lo, h_hi, max |c|), or [7] with the
//        projection input's m_lo, m_hi appended for a projected LSTM;
//   GRU  "<path>.qat_gru_ranges_l<k>" = f32 [4] (x_lo, x_hi, h_lo, h_hi).
std::vector<std::pair<std::string, Tensor>> qat_lstm_state(const std::vector<std::unique_ptr<QatLstm>>& q);
void load_qat_lstm_state(const std::vector<std::unique_ptr<QatLstm>>& q,
                         const std::vector<std::pair<std::string, Tensor>>& entries, const std::string& file);
std::vector<std::pair<std::string, Tensor>> qat_gru_state(const std::vector<std::unique_ptr<QatGru>>& q);
void load_qat_gru_state(const std::vector<std::unique_ptr<QatGru>>& q,
                        const std::vector<std::pair<std::string, Tensor>>& entries, const std::string& file);

// Convert: every float lstm node of `g` (a captured float program of the QAT model) whose
// weights are one of the QAT layers' becomes quantize → qlstm → dequantize with that layer's
// observed ranges (compile::quantize_static_lstm's rewrite). Returns how many were rewritten;
// fails with a sentence when an lstm node has no QAT layer or a layer has not seen data.
int lower_qat_lstm(runtime::Graph& g, const std::vector<std::unique_ptr<QatLstm>>& q);

}  // namespace finch::quant
