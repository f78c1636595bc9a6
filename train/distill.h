// Knowledge distillation (Hinton, Vinyals & Dean 2015): a student learns from a teacher's
// softened class probabilities as well as from the labels. The loss, and a Distiller that runs
// the teacher on each training batch beside the student inside the ordinary training loop.
#pragma once

#include <memory>

#include "autograd/nn/module.h"
#include "train/loop.h"

namespace finch::train {

// α · T² · KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α) · CE(s, labels), the KL averaged over the
// batch (torch's kl_div reduction "batchmean"), the CE over the batch (torch's default).
// student_logits, teacher_logits [B, K]; labels I64 [B]. The teacher's logits carry no gradient.
// T² keeps the soft term's gradient the same size as T grows (the soft gradients scale as 1/T²).
// temperature > 0 and α in [0, 1], else a finch::Error sentence.
Tensor distillation_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
                         double temperature, double alpha);

// Runs `teacher` (in eval mode, no gradient) on every batch the student sees in training mode
// and mixes its logits into the loss. The training loop's LossFn sees only (outputs, labels), so
// the Distiller listens at the student's forward (a ForwardInterceptor on its root module) and
// keeps the teacher's logits of the same batch for loss(). Nothing else changes: fit() trains
// the student, state dicts and checkpoints are the student's. Evaluation (eval mode) skips the
// teacher. The interceptor is removed when the Distiller goes away.
class Distiller {
 public:
  Distiller(nn::Module& student, nn::Module& teacher, double temperature, double alpha);
  ~Distiller();
  Distiller(const Distiller&) = delete;
  Distiller& operator=(const Distiller&) = delete;
  // The loss for fit()/train_epoch(): distillation_loss(outputs, the teacher's logits, labels).
  // Called without a fresh teacher forward (outputs not from the student in training mode) it is a
  // finch::Error sentence rather than a loss against another batch's teacher.
  LossFn loss() const;

  struct State;  // the teacher's last logits, shared with the interceptor

 private:
  nn::Module& student_;
  std::shared_ptr<nn::ForwardInterceptor> previous_;
  std::shared_ptr<State> state_;
  double temperature_ = 1, alpha_ = 0;
};

}  // namespace finch::train
