// The interface of models that take variable-length batches: the padded inputs and each
// sample's valid length, so padded steps neither update a recurrent state nor reach the output.
#pragma once

#include "framework/tensor.h"

namespace finch::nn {

// One outermost forward for the guard's lifetime: module calls inside it number their calls
// 0, 1, ... as they do inside a top-level Module::forward(). Entry points that are not
// Module::forward() (LengthAware::forward_with_lengths below) open one, so a module used twice
// (a shared ReLU) keeps one call site per use there too; nested, it does nothing.
class ForwardPass {
 public:
  ForwardPass();
  ~ForwardPass();
  ForwardPass(const ForwardPass&) = delete;
  ForwardPass& operator=(const ForwardPass&) = delete;
};

// The valid steps of a padded batch, for the layers whose training-mode statistics span time:
// while one is alive on this thread, a BatchNorm1d in training mode over [B, C, T] computes its
// batch statistics only where mask [B, 1, T] is 1 (autograd/masked_batch_norm.h), so padding
// changes neither its output at the valid steps nor its running statistics — also when quant/'s
// QAT conv+BN interceptor calls the BN. A [B, C, T] input whose B or T differs from the mask's
// is one sentence (a model that pools over time must not hold the mask across the pool). Scopes
// nest (the inner one wins until it ends); an undefined mask, or one whose every step is valid
// (an equal-length batch: the plain statistics, fused kernels and --sync-bn included), turns
// masking off inside.
class StepMask {
 public:
  explicit StepMask(Tensor mask);
  ~StepMask();
  StepMask(const StepMask&) = delete;
  StepMask& operator=(const StepMask&) = delete;
  // The innermost live mask of this thread, or an undefined tensor.
  static const Tensor& current();

 private:
  const Tensor* previous_;
  Tensor mask_;
};

// Implemented (besides Module) by models whose inputs can be padded sequences. The training
// loop, evaluation and the apps call forward_with_lengths() when a batch carries lengths
// (data::Batch::lengths) and the model implements this; Module::forward() otherwise.
class LengthAware {
 public:
  virtual ~LengthAware() = default;
  // x: the padded batch (its time axis as the model documents); lengths: I64 [B], each in
  // [1, T]. Must equal forward() on each sample cut to its own length, to float rounding.
  virtual Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) = 0;
};

}  // namespace finch::nn
