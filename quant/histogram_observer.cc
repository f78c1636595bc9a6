// The Histogram observer: a per-tensor histogram over the observed range (re-binned as the range
// grows) and a clipping range chosen by MSE, percentile or entropy (KL divergence).
//
// Definitions (documented in observer.h's terms):
//  - percentile p, affine: [quantile((100 - p) / 100), quantile(p / 100)] of the values;
//    symmetric: t = quantile(p / 100) of |x| and the range [-t, t]. Both interpolate inside bins.
//  - mse: detail::mse_range (rounding noise plus clipping error, searched over bin edges).
//  - entropy: TensorRT's KL threshold t on the |x| histogram with (qmax - qmin) / 2 + 1 levels
//    (128 for 8 bits), or all qmax - qmin + 1 for non-negative data on an affine grid. For an
//    affine spec the range is [-t, t] too: KL calibration only ever chooses a magnitude, and the
//    data range then trims whichever side has no values there.
// Every chosen range is intersected with the observed [min, max], so range() never reports
// values that were never seen; qparams() widens it to include 0.
#include <algorithm>
#include <cmath>
#include <optional>

#include "framework/error.h"
#include "quant/histogram.h"
#include "quant/observer.h"
#include "quant/observer_common.h"

namespace finch::quant {
namespace {

using detail::Histogram;

class HistogramObserver final : public Observer {
 public:
  HistogramObserver(QSpec spec, std::string method, int64_t bins, double percentile)
      : Observer(spec), method_(std::move(method)), bins_(bins), percentile_(percentile) {
    if (method_ != "mse" && method_ != "percentile" && method_ != "entropy")
      fail("histogram observer: unknown method \"", method_, "\"; expected one of mse, percentile, entropy");
    if (spec.axis >= 0)
      fail("histogram observer: only per-tensor statistics are supported, got the per-channel spec ", spec.str(),
           " (use minmax or moving-average for per-channel ranges)");
    if (bins < 8 || bins > (1 << 20)) fail("histogram observer: expected 8 to 1048576 bins, got ", bins);
    if (!(percentile > 50 && percentile <= 100))
      fail("histogram observer: expected a percentile in (50, 100], got ", percentile);
    qrange(spec);  // validates bits now
    reset();
  }

  QParams qparams() const override {
    if (!has_observed())
      fail(name(), " observer: cannot compute qparams, the observer saw no data (call observe() first)");
    auto [lo, hi] = range();
    return quant::qparams(spec_, lo, hi);
  }

  std::pair<std::vector<float>, std::vector<float>> range() const override {
    if (!has_observed()) return {{}, {}};
    if (!cache_) cache_ = choose();
    return {{cache_->first}, {cache_->second}};
  }
  bool has_observed() const override { return observed_; }
  std::string name() const override { return method_ == "mse" ? "histogram-mse" : method_; }

  std::vector<std::pair<std::string, Tensor>> state() const override {
    std::vector<float> h(hist_.counts.begin(), hist_.counts.end());
    std::vector<float> mn, mx;
    if (observed_) mn = {float(hist_.lo)}, mx = {float(hist_.hi)};
    return {{"min_val", detail::vector_tensor(mn)}, {"max_val", detail::vector_tensor(mx)},
            {"histogram", detail::vector_tensor(h)}};
  }

  void load_state(const std::vector<std::pair<std::string, Tensor>>& s) override {
    const std::vector<float> mn = detail::state_vector(name(), s, "min_val");
    const std::vector<float> mx = detail::state_vector(name(), s, "max_val");
    const std::vector<float> h = detail::state_vector(name(), s, "histogram");
    if (int64_t(h.size()) != bins_)
      fail(name(), " observer: load_state expected \"histogram\" of shape [", bins_, "], got [", h.size(), "]");
    if (mn.size() != mx.size() || mn.size() > 1)
      fail(name(), " observer: load_state expected \"min_val\" and \"max_val\" of shape [1] (or [0] before any data), "
           "got [", mn.size(), "] and [", mx.size(), "]");
    double total = 0;
    for (float c : h) {
      if (!(c >= 0) || !std::isfinite(c))
        fail(name(), " observer: load_state expected finite non-negative histogram counts, found ", c);
      total += c;
    }
    if (mn.empty()) {
      if (total != 0) fail(name(), " observer: load_state found histogram counts but no min_val/max_val");
      reset();
      return;
    }
    if (!std::isfinite(mn[0]) || !std::isfinite(mx[0]) || mn[0] > mx[0])
      fail(name(), " observer: load_state expected finite min_val <= max_val, got [", mn[0], ", ", mx[0], "]");
    hist_ = Histogram{mn[0], mx[0], std::vector<double>(h.begin(), h.end())};
    observed_ = true;
    cache_.reset();
  }

 protected:
  void update(const Tensor& x) override {
    auto [bmin, bmax] = detail::observe_minmax(name(), spec_, x);
    const double lo = bmin[0], hi = bmax[0];
    if (!observed_) {
      hist_ = Histogram{lo, hi, std::vector<double>(size_t(bins_), 0.0)};
    } else if (lo < hist_.lo || hi > hist_.hi) {
      // Grow to exactly cover the union: min_val/max_val stay the true observed extremes, and each
      // re-bin spreads an old bin over at most two new ones (the new bins are wider).
      hist_ = detail::rebin(hist_, std::min(lo, hist_.lo), std::max(hi, hist_.hi), bins_);
    }
    const Tensor xc = x.contiguous();
    detail::histogram_add(hist_, xc.data<float>(), xc.numel());
    observed_ = true;
    cache_.reset();
  }

 private:
  void reset() {
    hist_ = Histogram{0, 0, std::vector<double>(size_t(bins_), 0.0)};
    observed_ = false;
    cache_.reset();
  }

  std::pair<float, float> choose() const {
    double lo = hist_.lo, hi = hist_.hi;
    if (hist_.hi > hist_.lo && hist_.total() > 0) {
      if (method_ == "mse") {
        std::tie(lo, hi) = detail::mse_range(hist_, spec_);
      } else if (method_ == "percentile") {
        const double p = percentile_ / 100;
        if (spec_.symmetric) {
          const double t = detail::quantile(detail::fold_abs(hist_), p);
          lo = -t, hi = t;
        } else {
          lo = detail::quantile(hist_, 1 - p), hi = detail::quantile(hist_, p);
        }
      } else {
        // Levels the range [0, t] (or [-t, t]) gets: an affine grid spends all of them on
        // non-negative data (ReLU outputs), a symmetric one half.
        const QRange r = qrange(spec_);
        const bool nonnegative = !spec_.symmetric && hist_.lo >= 0;
        const int64_t levels = nonnegative ? r.qmax - r.qmin + 1 : (r.qmax - r.qmin) / 2 + 1;
        const double t = detail::entropy_threshold(detail::fold_abs(hist_), levels);
        lo = -t, hi = t;
      }
    }
    lo = std::clamp(lo, hist_.lo, hist_.hi);
    hi = std::clamp(hi, hist_.lo, hist_.hi);
    return {float(lo), float(std::max(lo, hi))};
  }

  std::string method_;
  int64_t bins_;
  double percentile_;
  Histogram hist_;
  bool observed_ = false;
  // The chosen range, computed on demand (the searches cost milliseconds) and dropped on update.
  mutable std::optional<std::pair<float, float>> cache_;
};

}  // namespace

std::unique_ptr<Observer> make_histogram_observer(QSpec spec, const std::string& method, int64_t bins,
                                                  double percentile) {
  return std::make_unique<HistogramObserver>(spec, method, bins, percentile);
}

}  // namespace finch::quant
