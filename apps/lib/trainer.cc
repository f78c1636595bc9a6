// train_cifar's training loop: optimizer construction, LR schedules, one epoch of steps.
#include "apps/lib/trainer.h"

#include <chrono>
#include <cmath>
#include <sstream>

#include "autograd/engine.h"
#include "autograd/functional.h"
#include "autograd/optim/optim.h"
#include "framework/error.h"
#include "framework/progress.h"

namespace finch::apps {

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, const nn::Module& model) {
  if (o.optimizer == "sgd") {
    optim::SGDOptions so;
    so.lr = o.lr;
    so.momentum = o.momentum;
    so.weight_decay = o.weight_decay;
    so.nesterov = o.nesterov && o.momentum > 0;  // torch rejects Nesterov without momentum
    return std::make_unique<optim::SGD>(model.parameters(), so);
  }
  optim::AdamOptions ao;
  ao.lr = o.lr;
  ao.weight_decay = o.weight_decay;
  if (o.optimizer == "adam") return std::make_unique<optim::Adam>(model.parameters(), ao);
  if (o.optimizer == "adamw") return std::make_unique<optim::AdamW>(model.parameters(), ao);
  fail("train_cifar: unknown optimizer '", o.optimizer, "' (expected sgd, adam or adamw)");
}

namespace {

void set_momentum(optim::Optimizer& opt, double m) {
  if (auto* sgd = dynamic_cast<optim::SGD*>(&opt)) {
    if (sgd->options().momentum > 0) sgd->set_momentum(m);
  } else if (auto* adam = dynamic_cast<optim::Adam*>(&opt)) {
    adam->set_beta1(m);
  }
}

}  // namespace

double apply_schedule(const TrainOptions& o, optim::Optimizer& opt, int64_t step, int64_t steps_per_epoch) {
  const int64_t total = std::max<int64_t>(1, steps_per_epoch * o.epochs);
  const int64_t warmup = std::min<int64_t>(total - 1, std::llround(o.warmup_epochs * double(steps_per_epoch)));
  double lr = o.lr;
  if (o.schedule == "cosine") {
    lr = optim::warmup_cosine_lr(o.lr, step, warmup, total);
  } else if (o.schedule == "step") {
    // Linear warm-up, then ×0.1 at 50 % and 75 % of the run (the classic ResNet recipe, scaled).
    if (step < warmup) {
      lr = o.lr * (1.0 / 3.0 + (2.0 / 3.0) * double(step) / double(warmup));
    } else {
      lr = optim::multistep_lr(o.lr, step, {total / 2, total * 3 / 4}, 0.1);
    }
  } else if (o.schedule == "onecycle") {
    optim::OneCycleLR s{o.lr, total};
    const int64_t t = std::min(step, total - 1);
    lr = s.lr(t);
    set_momentum(opt, s.momentum(t));
  } else if (o.schedule == "cyclic") {
    optim::CyclicLR s{o.lr / 10.0, o.lr};
    s.step_size_up = std::max<int64_t>(1, total / 4);  // two full triangles over the run
    lr = s.lr(step);
    set_momentum(opt, s.momentum(step));
  } else {
    fail("train_cifar: unknown schedule '", o.schedule, "' (expected cosine, step, onecycle or cyclic)");
  }
  opt.set_lr(lr);
  return lr;
}

EpochStats train_epoch(const TrainOptions& o, nn::Module& model, optim::Optimizer& opt,
                       data::DataLoader& loader, int64_t epoch, bool quiet) {
  model.train();
  const int64_t steps = loader.num_batches();
  ProgressOptions po;
  po.unit = "batch";
  std::ostringstream sink;
  if (quiet) po.out = &sink;
  Progress bar(steps, "epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o.epochs), po);
  EpochStats st;
  double loss_sum = 0;
  int64_t correct = 0;
  const auto t0 = std::chrono::steady_clock::now();
  loader.start_epoch(epoch);
  data::Batch b;
  for (int64_t i = 0; loader.next(b); ++i) {
    const double lr = apply_schedule(o, opt, epoch * steps + i, steps);
    if (i == 0) st.lr = lr;
    opt.zero_grad();
    Tensor logits = model.forward(b.images);
    Tensor loss = cross_entropy(logits, b.labels, Reduction::mean, -100, o.label_smoothing);
    const double lv = loss.item();
    if (!std::isfinite(lv))
      fail("train_cifar: the training loss became ", lv, " at epoch ", epoch + 1, " step ", i + 1,
           "; lower --lr (now ", o.lr, ")");
    backward(loss);
    opt.step();
    const int64_t n = b.labels.size(0);
    loss_sum += lv * double(n);
    const auto p = argmax(logits.detach(), 1).to_vector<int64_t>();
    const auto y = b.labels.to_vector<int64_t>();
    for (size_t k = 0; k < p.size(); ++k) correct += p[k] == y[k];
    st.images += n;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    bar.update(1, {{"loss", loss_sum / double(st.images)},
                   {"acc", double(correct) / double(st.images)},
                   {"img/s", secs > 0 ? double(st.images) / secs : 0.0}});
  }
  bar.finish();
  st.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (st.images > 0) {
    st.loss = loss_sum / double(st.images);
    st.accuracy = double(correct) / double(st.images);
  }
  return st;
}

}  // namespace finch::apps
