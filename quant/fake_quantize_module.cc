// FakeQuantize module: observer + fake quantization, with its parameters in the state dict.
#include "quant/fake_quantize_module.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>

#include "autograd/capture.h"
#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/grad_mode.h"
#include "compile/capture.h"
#include "quant/fake_quant.h"

namespace finch::quant {

namespace {
struct Registered {
  Tensor tensor;  // held so its address is not reused while the entry lives
  QParams params;
};
thread_local std::unordered_map<const void*, Registered> t_quantized;
}  // namespace

void register_quantized(const Tensor& t, const QParams& p) {
  // A FakeQuantize used outside a prepared model has no root to clear the table: bound it.
  if (t_quantized.size() >= 4096) t_quantized.clear();
  t_quantized[t.impl()] = {t, p};
}
const QParams* quantized_params(const Tensor& t) {
  const auto it = t_quantized.find(t.impl());
  return it == t_quantized.end() ? nullptr : &it->second.params;
}
void clear_quantized() { t_quantized.clear(); }

FakeQuantize::FakeQuantize(std::unique_ptr<Observer> observer, int64_t channels, bool lsq)
    : observer_(std::move(observer)), lsq_(lsq) {
  if (!observer_) fail("FakeQuantize: an observer is required");
  if (channels < 1) fail("FakeQuantize: channels must be positive, got ", channels);
  if (observer_->spec().axis < 0 && channels != 1)
    fail("FakeQuantize: a per-tensor observer has 1 channel, got ", channels);
  // LSQ trains the scale, so it is a parameter there and a buffer otherwise (same name either
  // way, so checkpoints of both modes load into each other).
  scale = lsq ? register_parameter("scale", ones({channels})) : register_buffer("scale", ones({channels}));
  zero_point = register_buffer("zero_point", zeros({channels}, DType::i32));
  min_val = register_buffer("min_val", zeros({channels}));
  max_val = register_buffer("max_val", zeros({channels}));
  initialized = register_buffer("initialized", zeros({1}, DType::i64));
}

bool FakeQuantize::ready() const {
  return initialized.data<int64_t>()[0] != 0 || observer_->has_observed();
}

void FakeQuantize::restore_observer_if_loaded() {
  // After load_state_dict the buffers hold a trained range the fresh observer has not seen.
  if (observer_->has_observed() || initialized.data<int64_t>()[0] == 0) return;
  if (observer_->name() == "minmax" || observer_->name() == "moving-average")
    observer_->load_state({{"min_val", min_val.clone()}, {"max_val", max_val.clone()}});
}

void FakeQuantize::sync_from_observer() {
  const QParams p = observer_->qparams();
  const auto [lo, hi] = observer_->range();
  NoGradGuard ng;
  const int64_t c = scale.numel();
  if (p.channels() != c)
    fail("FakeQuantize: the observer produced ", p.channels(), " channels, expected ", c);
  for (int64_t i = 0; i < c; ++i) {
    if (!lsq_ || !lsq_initialized_) scale.data<float>()[i] = p.scale[size_t(i)];
    zero_point.data<int32_t>()[i] = p.zero_point[size_t(i)];
    min_val.data<float>()[i] = lo[size_t(i)];
    max_val.data<float>()[i] = hi[size_t(i)];
  }
  initialized.data<int64_t>()[0] = 1;
  lsq_initialized_ = lsq_initialized_ || lsq_;
}

QParams FakeQuantize::qparams() const {
  if (!ready())
    fail("FakeQuantize: no quantization parameters yet: the observer has seen no data (calibrate first)");
  const QRange r = qrange(observer_->spec());
  QParams p;
  p.axis = observer_->spec().axis;
  p.qmin = r.qmin;
  p.qmax = r.qmax;
  p.scale = scale.detach().to_vector<float>();
  p.zero_point = zero_point.to_vector<int32_t>();
  for (float& s : p.scale) s = std::max(s, kMinScale);
  return p;
}

void FakeQuantize::freeze() {
  observer_->freeze();
}

Tensor FakeQuantize::forward_impl(const Tensor& x) {
  autograd::CaptureScope cap;  // reported as one fake_quant node (graph capture)
  restore_observer_if_loaded();
  if (observer_->enabled()) {
    observer_->observe(x.detach());
    sync_from_observer();
  }
  if (!fake_quant_on_) return x;
  if (collect_errors_) {
    NoGradGuard ng;
    const Tensor xc = x.detach().contiguous();
    const Tensor y = fake_quant(xc, qparams());
    const float* px = xc.data<float>();
    const float* py = y.data<float>();
    for (int64_t i = 0; i < xc.numel(); ++i) {
      const double d = double(py[i]) - double(px[i]);
      errors_.count += 1;
      errors_.sum += d;
      errors_.sum_abs += std::fabs(d);
      errors_.sum_sq += d * d;
      errors_.max_abs = std::max(errors_.max_abs, std::fabs(d));
    }
  }
  if (lsq_) {
    {
      // An optimizer step may push a learned scale to zero or below; keep it a quantizer.
      NoGradGuard ng;
      float* s = scale.data<float>();
      for (int64_t i = 0; i < scale.numel(); ++i) s[i] = std::max(s[i], kMinScale);
    }
    const QParams p = qparams();
    Tensor y = fake_quant_lsq(x, scale, p);
    register_quantized(y, p);
    if (cap.active()) cap.record("fake_quant", {x}, {y}, compile::qparams_json(p));
    return y;
  }
  const QParams p = qparams();
  Tensor y = fake_quant(x, p);
  register_quantized(y, p);
  if (cap.active()) cap.record("fake_quant", {x}, {y}, compile::qparams_json(p));
  return y;
}

}  // namespace finch::quant
