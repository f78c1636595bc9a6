// Classification (cross-entropy / binary BCE) and regression (MSE) losses (see losses.h).
#include "train/losses.h"

#include "autograd/functional.h"
#include "framework/error.h"

namespace finch::train {

LossFn classification_loss(double label_smoothing) {
  return [label_smoothing](const Tensor& out, const Tensor& labels) {
    const bool one_logit = out.dim() == 1 || (out.dim() == 2 && out.size(1) == 1);
    if (!one_logit) return cross_entropy(out, labels, Reduction::mean, -100, label_smoothing);
    if (labels.dim() != 1 || labels.size(0) != out.size(0))
      fail("binary loss: expected labels [", out.size(0), "], got ", shape_str(labels.shape()));
    for (int64_t y : labels.to_vector<int64_t>())
      if (y != 0 && y != 1) fail("binary loss: a model with one output logit needs labels 0 or 1, found ", y);
    Tensor y = labels.to(DType::f32);
    if (label_smoothing > 0) y = from_vector<float>([&] {
          auto v = y.contiguous().to_vector<float>();
          for (float& t : v) t = float(t * (1 - label_smoothing) + label_smoothing / 2);
          return v;
        }(), {labels.size(0)});
    return bce_with_logits(reshape(out, {out.size(0)}), y);
  };
}

LossFn regression_loss() {
  return [](const Tensor& out, const Tensor& targets) {
    if (out.dim() < 1 || targets.dim() < 1 || out.size(0) != targets.size(0) || out.numel() != targets.numel())
      fail("regression loss: expected outputs with the targets' shape ", shape_str(targets.shape()), ", got ",
           shape_str(out.shape()));
    return mse_loss(reshape(out, targets.shape()), targets);
  };
}

}  // namespace finch::train
