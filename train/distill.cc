// Distillation: the mixed soft/hard loss built from differentiable functions (so its backward is
// the tape's), and the interceptor that runs the teacher beside the student.
#include "train/distill.h"

#include <cmath>

#include "autograd/functional.h"
#include "framework/error.h"
#include "framework/grad_mode.h"

namespace finch::train {

Tensor distillation_loss(const Tensor& student_logits, const Tensor& teacher_logits, const Tensor& labels,
                         double temperature, double alpha) {
  if (!(temperature > 0) || !std::isfinite(temperature))
    fail("distillation: expected a temperature > 0, found ", temperature);
  if (!(alpha >= 0 && alpha <= 1)) fail("distillation: expected α in [0, 1], found ", alpha);
  if (student_logits.dim() != 2 || teacher_logits.shape() != student_logits.shape())
    fail("distillation: expected student and teacher logits of one shape [B, K], found ",
         shape_str(student_logits.shape()), " and ", shape_str(teacher_logits.shape()));
  const double batch = double(student_logits.size(0));
  Tensor loss;
  if (alpha > 0) {
    // KL(p_t ‖ p_s) = Σ p_t (log p_t − log p_s), from log-softmaxes (stable for large logits).
    const Tensor log_pt = log_softmax(teacher_logits.detach() / temperature, 1);
    const Tensor log_ps = log_softmax(student_logits / temperature, 1);
    const Tensor kl = sum(exp(log_pt) * (log_pt - log_ps)) / batch;
    loss = kl * (alpha * temperature * temperature);
  }
  if (alpha < 1) {
    const Tensor hard = cross_entropy(student_logits, labels) * (1 - alpha);
    loss = loss.defined() ? loss + hard : hard;
  }
  return loss;
}

struct Distiller::State {
  nn::Module* teacher = nullptr;
  Tensor logits;  // the teacher's, for the batch the student saw last in training mode
  const TensorImpl* student_out = nullptr;  // which student output they belong to
};

namespace {
class TeacherBeside : public nn::ForwardInterceptor {
 public:
  TeacherBeside(std::shared_ptr<Distiller::State> s, std::shared_ptr<nn::ForwardInterceptor> previous)
      : state_(std::move(s)), previous_(std::move(previous)) {}
  Tensor run(nn::Module& m, const Tensor& x, int64_t call) override {
    Tensor y = previous_ ? previous_->run(m, x, call) : m.forward_impl(x);
    if (m.is_training()) {
      NoGradGuard ng;
      state_->logits = state_->teacher->forward(x);
      state_->student_out = y.impl();
    }
    return y;
  }

 private:
  std::shared_ptr<Distiller::State> state_;
  std::shared_ptr<nn::ForwardInterceptor> previous_;
};
}  // namespace

Distiller::Distiller(nn::Module& student, nn::Module& teacher, double temperature, double alpha)
    : student_(student), previous_(student.interceptor()), state_(std::make_shared<State>()) {
  distillation_loss(zeros({1, 2}), zeros({1, 2}), zeros({1}, DType::i64), temperature, alpha);  // checks T, α
  if (&student == &teacher) fail("distillation: the teacher must be another model than the student");
  state_->teacher = &teacher;
  teacher.eval();
  student.set_interceptor(std::make_shared<TeacherBeside>(state_, previous_));
  temperature_ = temperature;
  alpha_ = alpha;
}

Distiller::~Distiller() { student_.set_interceptor(previous_); }

LossFn Distiller::loss() const {
  return [state = state_, t = temperature_, a = alpha_](const Tensor& outputs, const Tensor& labels) {
    if (!state->logits.defined() || state->student_out != outputs.impl())
      fail("distillation: the loss got outputs that did not come from the student's training-mode forward, so "
           "there are no teacher logits for them");
    const Tensor teacher = state->logits;
    state->logits = Tensor();
    state->student_out = nullptr;
    return distillation_loss(outputs, teacher, labels, t, a);
  };
}

}  // namespace finch::train
