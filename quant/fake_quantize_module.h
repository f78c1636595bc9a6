// FakeQuantize: one place where the integer program quantizes (an activation call site or a
// weight), as a module: an observer that watches the float values, and fake quantization with
// the observer's current parameters (or, in LSQ mode, a learned scale). Observing and
// fake-quantizing can be switched separately, as in PyTorch: PTQ calibration observes only,
// QAT does both, and after --freeze-observer-epoch the parameters stay fixed.
#pragma once

#include <memory>
#include <string>

#include "autograd/nn/module.h"
#include "quant/observer.h"
#include "kernels/qparams.h"

namespace finch::quant {

// Which tensors of the current forward hold quantized values, with their parameters: each
// fake-quantizing FakeQuantize registers its output, so the exact integer units downstream
// (integer_sim.h) know their input's scale and zero point. Per thread; the prepared model's root
// clears it at the start and end of each forward (entries keep their tensors alive meanwhile).
void register_quantized(const Tensor& t, const QParams& p);
const QParams* quantized_params(const Tensor& t);
void clear_quantized();

class FakeQuantize : public nn::Module {
 public:
  // lsq: the scale becomes a learnable parameter "scale", initialized from the observer's range
  // on the first call and trained by the optimizer after that (Esser et al. 2019).
  // channels: 1 per-tensor, else the size of the observer spec's axis (known from capture).
  FakeQuantize(std::unique_ptr<Observer> observer, int64_t channels, bool lsq = false);
  std::string type_name() const override { return "FakeQuantize"; }

  // Observes x (detached) when the observer is on, then returns fake_quant(x) when fake
  // quantization is on, x itself otherwise.
  Tensor forward_impl(const Tensor& x) override;

  // The parameters the next call would use (LSQ: the learned scale with the observer's zero
  // points). Fails if the observer has seen no data and no scale was learned or loaded.
  QParams qparams() const;
  bool ready() const;

  void enable_observer(bool on) { observer_->set_enabled(on); }
  void enable_fake_quant(bool on) { fake_quant_on_ = on; }
  bool fake_quant_enabled() const { return fake_quant_on_; }
  // Stops observing for good and fixes the parameters (QAT's --freeze-observer-epoch).
  void freeze();
  Observer& observer() { return *observer_; }
  const Observer& observer() const { return *observer_; }
  bool lsq() const { return lsq_; }

  // The quantization debugger (seed 002): while on, every fake-quantizing call adds the error
  // d = fake_quant(x) − x of its elements here. rmse/scale near 1/√12 ≈ 0.289 is pure rounding;
  // far above it, clipping or a poor range dominates.
  struct ErrorStats {
    int64_t count = 0;
    double sum = 0, sum_abs = 0, sum_sq = 0, max_abs = 0;
    double mean() const { return count ? sum / double(count) : 0; }
    double mean_abs() const { return count ? sum_abs / double(count) : 0; }
    double mse() const { return count ? sum_sq / double(count) : 0; }
  };
  void collect_errors(bool on) { collect_errors_ = on; }
  const ErrorStats& errors() const { return errors_; }
  void reset_errors() { errors_ = ErrorStats{}; }

  // State-dict entries, refreshed on every observing call so a checkpoint holds what was used
  // last: scale [C] (f32; a parameter in LSQ mode), zero_point [C] (i32), the observer's range
  // min_val/max_val [C] (restored into minmax and moving-average observers on resume), and
  // initialized [1] (i64, 1 once any of them is meaningful).
  Tensor scale, zero_point, min_val, max_val, initialized;

 private:
  void sync_from_observer();
  void restore_observer_if_loaded();
  std::unique_ptr<Observer> observer_;
  bool lsq_ = false, fake_quant_on_ = true, lsq_initialized_ = false, collect_errors_ = false;
  ErrorStats errors_;
};

}  // namespace finch::quant
