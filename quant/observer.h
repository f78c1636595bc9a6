// Observers: they watch the tensors flowing through a model (activations during calibration or
// QAT, weights once) and keep the statistics from which qparams() picks scale and zero point.
// MinMax and MovingAverageMinMax work per-tensor or per-channel (QSpec::axis); the Histogram
// observer (per-tensor) picks its range by MSE, by percentile or by KL divergence (entropy).
// Every observer can be disabled (observe() ignores its input) and frozen (disabled for good:
// its qparams never change again, e.g. after the QAT epoch chosen by --freeze-observer-epoch).
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"
#include "kernels/qparams.h"

namespace finch::quant {

class Observer {
 public:
  explicit Observer(QSpec spec) : spec_(spec) {}
  virtual ~Observer() = default;

  // Records x (f32, any shape; for per-channel, x.size(spec.axis) channels). Ignored while
  // disabled or frozen. Fails on an empty tensor, a non-f32 dtype, NaN/Inf values, or a channel
  // count that differs from earlier calls.
  void observe(const Tensor& x) {
    if (enabled_ && !frozen_) update(x);
  }
  // Scale and zero point for what was observed so far. Fails if nothing has been observed.
  virtual QParams qparams() const = 0;
  // The current range, one entry per channel (per-tensor: one): what qparams() is computed from
  // (for the Histogram observer, the range its method chose).
  virtual std::pair<std::vector<float>, std::vector<float>> range() const = 0;
  virtual bool has_observed() const = 0;
  virtual std::string name() const = 0;  // "minmax", "moving-average", "histogram-mse", ...

  void set_enabled(bool on) { enabled_ = on; }
  bool enabled() const { return enabled_ && !frozen_; }
  void freeze() { frozen_ = true; }
  bool frozen() const { return frozen_; }
  const QSpec& spec() const { return spec_; }

  // Statistics as named f32 tensors for checkpoints (e.g. "min_val", "max_val", "histogram"),
  // and back. load_state fails with a clear sentence on missing names or wrong shapes.
  virtual std::vector<std::pair<std::string, Tensor>> state() const = 0;
  virtual void load_state(const std::vector<std::pair<std::string, Tensor>>& s) = 0;

 protected:
  virtual void update(const Tensor& x) = 0;
  QSpec spec_;

 private:
  bool enabled_ = true, frozen_ = false;
};

// Running min and max of everything observed.
std::unique_ptr<Observer> make_minmax_observer(QSpec spec);
// Exponential moving average of each batch's min and max: m += c * (batch_m - m); the first
// batch sets them (PyTorch's MovingAverageMinMaxObserver, averaging constant 0.01).
std::unique_ptr<Observer> make_moving_average_observer(QSpec spec, float averaging_constant = 0.01f);
// Per-tensor histogram (`bins` bins over a range that grows as data arrives) and a range chosen
// by `method`: "mse" (minimizes the expected squared error, rounding plus clipping), "percentile"
// (affine: from the (100 − p)-th to the p-th percentile; symmetric: the p-th percentile of |x|),
// "entropy" (TensorRT-style: the clipping
// threshold that minimizes the KL divergence between the histogram and its quantized form).
std::unique_ptr<Observer> make_histogram_observer(QSpec spec, const std::string& method, int64_t bins = 2048,
                                                  double percentile = 99.99);
// By name, as the command lines spell them: minmax, moving-average, histogram-mse, percentile,
// entropy. Fails listing the valid names for anything else.
std::unique_ptr<Observer> make_observer(const std::string& name, QSpec spec);
std::vector<std::string> observer_names();

}  // namespace finch::quant
