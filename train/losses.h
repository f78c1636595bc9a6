// The training losses the apps pick from: cross-entropy for class scores (BCE-with-logits when
// the model has one binary logit) and mean squared error for regression targets.
#pragma once

#include "train/loop.h"

namespace finch::train {

// Outputs [B, K] (K ≥ 2) against labels I64 [B]: cross-entropy with `label_smoothing`. Outputs
// [B, 1] or [B] (one logit z for class 1): BCE-with-logits against the labels as 0/1 floats,
// smoothed to y(1 - ε) + ε/2 (what 2-class cross-entropy smoothing gives). A label outside
// {0, 1} for a binary model is a finch::Error sentence.
LossFn classification_loss(double label_smoothing = 0);

// Outputs against F32 targets with the same number of values per sample (the outputs are
// reshaped to the targets' shape): mean squared error over every value.
LossFn regression_loss();

}  // namespace finch::train
