// MinMax and MovingAverageMinMax observers (per-tensor or per-channel), the shared input checks,
// and make_observer's name table.
#include "quant/observer.h"

#include <algorithm>
#include <cmath>

#include "framework/error.h"
#include "quant/minmax.h"
#include "quant/observer_common.h"

namespace finch::quant {
namespace detail {

std::pair<std::vector<float>, std::vector<float>> observe_minmax(const std::string& who, const QSpec& spec,
                                                                  const Tensor& x) {
  if (!x.defined()) fail(who, " observer: expected a tensor to observe, got an undefined tensor");
  if (x.dtype() != DType::f32)
    fail(who, " observer: expected an F32 tensor, got ", dtype_name(x.dtype()), " of shape ", shape_str(x.shape()));
  if (x.numel() == 0) fail(who, " observer: expected a non-empty tensor, got shape ", shape_str(x.shape()));
  int64_t outer = 1, C = 1, inner = x.numel();
  if (spec.axis >= 0) {
    if (spec.axis >= x.dim())
      fail(who, " observer: per-channel axis ", spec.axis, " is out of range for a tensor of shape ",
           shape_str(x.shape()));
    C = x.size(spec.axis);
    outer = 1;
    for (int64_t d = 0; d < spec.axis; ++d) outer *= x.size(d);
    inner = x.numel() / (outer * C);
  }
  const Tensor xc = x.contiguous();
  std::vector<float> mn(static_cast<size_t>(C)), mx(static_cast<size_t>(C));
  if (!channel_minmax(xc.data<float>(), outer, C, inner, mn.data(), mx.data()))
    fail(who, " observer: expected finite values, found NaN or Inf in a tensor of shape ", shape_str(x.shape()));
  return {std::move(mn), std::move(mx)};
}

Tensor vector_tensor(const std::vector<float>& v) { return from_vector(v, {int64_t(v.size())}); }

std::vector<float> state_vector(const std::string& who, const std::vector<std::pair<std::string, Tensor>>& s,
                                const std::string& name) {
  for (const auto& [n, t] : s) {
    if (n != name) continue;
    if (!t.defined() || t.dim() != 1 || t.dtype() != DType::f32)
      fail(who, " observer: load_state expected \"", name, "\" to be a 1-D F32 tensor, got ",
           t.defined() ? std::string(dtype_name(t.dtype())) + " of shape " + shape_str(t.shape()) : "undefined");
    return t.to_vector<float>();
  }
  fail(who, " observer: load_state expected a tensor named \"", name, "\", but the state has none");
}

}  // namespace detail

namespace {

// Running (or moving-average) min and max per channel; `c` < 0 means plain running min/max.
class MinMaxObserver final : public Observer {
 public:
  MinMaxObserver(QSpec spec, float c) : Observer(spec), c_(c) {
    qrange(spec);  // validates bits now rather than at the first qparams()
    if (c >= 0 && !(c > 0 && c <= 1))
      fail("moving-average observer: expected an averaging constant in (0, 1], got ", c);
  }

  QParams qparams() const override {
    if (!has_observed())
      fail(name(), " observer: cannot compute qparams, the observer saw no data (call observe() first)");
    return quant::qparams(spec_, min_, max_);
  }
  std::pair<std::vector<float>, std::vector<float>> range() const override { return {min_, max_}; }
  bool has_observed() const override { return !min_.empty(); }
  std::string name() const override { return c_ < 0 ? "minmax" : "moving-average"; }

  std::vector<std::pair<std::string, Tensor>> state() const override {
    return {{"min_val", detail::vector_tensor(min_)}, {"max_val", detail::vector_tensor(max_)}};
  }
  void load_state(const std::vector<std::pair<std::string, Tensor>>& s) override {
    std::vector<float> mn = detail::state_vector(name(), s, "min_val");
    std::vector<float> mx = detail::state_vector(name(), s, "max_val");
    if (mn.size() != mx.size())
      fail(name(), " observer: load_state expected \"min_val\" and \"max_val\" of the same length, got ", mn.size(),
           " and ", mx.size());
    if (spec_.axis < 0 && mn.size() > 1)
      fail(name(), " observer: load_state expected a per-tensor state of shape [1], got [", mn.size(), "]");
    for (size_t c = 0; c < mn.size(); ++c)
      if (!std::isfinite(mn[c]) || !std::isfinite(mx[c]) || mn[c] > mx[c])
        fail(name(), " observer: load_state expected finite min_val <= max_val, got [", mn[c], ", ", mx[c],
             "] at channel ", c);
    min_ = std::move(mn);
    max_ = std::move(mx);
  }

 protected:
  void update(const Tensor& x) override {
    auto [mn, mx] = detail::observe_minmax(name(), spec_, x);
    if (!has_observed()) {
      min_ = std::move(mn);
      max_ = std::move(mx);
      return;
    }
    if (mn.size() != min_.size())
      fail(name(), " observer: expected ", min_.size(), " channels along axis ", spec_.axis,
           " as in earlier calls, got ", mn.size(), " in a tensor of shape ", shape_str(x.shape()));
    for (size_t c = 0; c < mn.size(); ++c) {
      if (c_ < 0) {
        min_[c] = std::min(min_[c], mn[c]);
        max_[c] = std::max(max_[c], mx[c]);
      } else {
        min_[c] += c_ * (mn[c] - min_[c]);
        max_[c] += c_ * (mx[c] - max_[c]);
      }
    }
  }

 private:
  float c_;
  std::vector<float> min_, max_;  // empty until the first observation
};

}  // namespace

std::unique_ptr<Observer> make_minmax_observer(QSpec spec) { return std::make_unique<MinMaxObserver>(spec, -1.0f); }

std::unique_ptr<Observer> make_moving_average_observer(QSpec spec, float averaging_constant) {
  return std::make_unique<MinMaxObserver>(spec, averaging_constant);
}

std::vector<std::string> observer_names() { return {"minmax", "moving-average", "histogram-mse", "percentile", "entropy"}; }

std::unique_ptr<Observer> make_observer(const std::string& name, QSpec spec) {
  if (name == "minmax") return make_minmax_observer(spec);
  if (name == "moving-average") return make_moving_average_observer(spec);
  if (name == "histogram-mse") return make_histogram_observer(spec, "mse");
  if (name == "percentile") return make_histogram_observer(spec, "percentile");
  if (name == "entropy") return make_histogram_observer(spec, "entropy");
  std::string valid;
  for (const auto& n : observer_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail("make_observer: unknown observer \"", name, "\"; expected one of ", valid);
}

}  // namespace finch::quant
