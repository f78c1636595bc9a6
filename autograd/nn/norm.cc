// BatchNorm1d/2d, LayerNorm: buffers, the momentum/num_batches_tracked bookkeeping of torch's
// _BatchNorm.forward, and the calls into the functional kernels.
#include "autograd/nn/norm.h"

#include <set>

#include "autograd/functional.h"
#include "autograd/masked_batch_norm.h"
#include "autograd/nn/sequence.h"
#include "autograd/sync_batch_norm.h"
#include "framework/grad_mode.h"

namespace finch::nn {

BatchNorm::BatchNorm(int64_t c, double eps, std::optional<double> momentum, bool affine,
                     bool track)
    : num_features(c), eps(eps), momentum(momentum), affine(affine), track_running_stats(track) {
  if (c <= 0) fail("BatchNorm: num_features must be positive, got ", c);
  weight = register_parameter("weight", affine ? ones({c}) : Tensor());
  bias = register_parameter("bias", affine ? zeros({c}) : Tensor());
  running_mean = register_buffer("running_mean", track ? zeros({c}) : Tensor());
  running_var = register_buffer("running_var", track ? ones({c}) : Tensor());
  num_batches_tracked =
      register_buffer("num_batches_tracked", track ? scalar_tensor(0, DType::i64) : Tensor());
}

void BatchNorm::reset_running_stats() {
  if (!track_running_stats) return;
  running_mean.zero_();
  running_var.fill_(1.0);
  num_batches_tracked.zero_();
}

void BatchNorm::reset_parameters() {
  reset_running_stats();
  if (!affine) return;
  NoGradGuard ng;
  weight.fill_(1.0);
  bias.zero_();
}

Tensor BatchNorm::forward_impl(const Tensor& x) {
  check_input(x);
  if (x.size(1) != num_features)
    fail(type_name(), ": expected ", num_features, " channels in dim 1, got shape ", shape_str(x.shape()));
  // Training-mode statistics over a padded batch's valid steps (nn::StepMask), checked first so
  // that a refused input leaves num_batches_tracked alone.
  const Tensor& steps = StepMask::current();
  const bool masked = (is_training() || !running_mean.defined()) && steps.defined() && x.dim() == 3;
  if (masked && (steps.dim() != 3 || steps.size(0) != x.size(0) || steps.size(2) != x.size(2)))
    fail(type_name(), ": expected an input [", steps.size(0), ", C, ", steps.dim() == 3 ? steps.size(2) : -1,
         "] matching the active step mask ", shape_str(steps.shape()), ", got shape ", shape_str(x.shape()));
  if (masked && sync_comm)
    fail(type_name(), ": synchronized batch norm (--sync-bn) of a padded batch with unequal lengths is not supported; "
                      "train without --sync-bn, or with series of one length");
  double factor = momentum.value_or(0.0);
  if (is_training() && track_running_stats) {
    int64_t& n = num_batches_tracked.data<int64_t>()[0];
    n += 1;
    if (!momentum) factor = 1.0 / double(n);  // cumulative moving average
  }
  // Without running statistics (track_running_stats=false) batch statistics are used even in
  // eval mode, as torch does.
  const bool use_batch_stats = is_training() || !running_mean.defined();
  const bool pass_running = !is_training() || track_running_stats;
  if (masked)
    return finch::masked_batch_norm(x, steps, pass_running ? running_mean : Tensor(),
                                    pass_running ? running_var : Tensor(), weight, bias, factor, eps);
  if (is_training() && sync_comm)
    return finch::sync_batch_norm(x, pass_running ? running_mean : Tensor(), pass_running ? running_var : Tensor(),
                                  weight, bias, factor, eps, *sync_comm);
  return finch::batch_norm(x, pass_running ? running_mean : Tensor(),
                           pass_running ? running_var : Tensor(), weight, bias, use_batch_stats,
                           factor, eps);
}

namespace {
thread_local const Tensor* t_step_mask = nullptr;
}  // namespace

namespace {
bool all_ones(const Tensor& m) {
  for (double v : m.to(DType::f64).contiguous().to_vector<double>())
    if (v != 1.0) return false;
  return true;
}
}  // namespace

// A mask with every step valid is no mask: the plain batch norm computes the same statistics, on
// its fused kernels (and synchronized over processes with --sync-bn, which masking does not do).
StepMask::StepMask(Tensor mask)
    : previous_(t_step_mask), mask_(mask.defined() && all_ones(mask) ? Tensor() : std::move(mask)) {
  t_step_mask = &mask_;
}
StepMask::~StepMask() { t_step_mask = previous_; }
const Tensor& StepMask::current() {
  static const Tensor none;
  return t_step_mask ? *t_step_mask : none;
}

void BatchNorm1d::check_input(const Tensor& x) const {
  if (x.dim() != 2 && x.dim() != 3)
    fail("BatchNorm1d: expected a 2-D [N, C] or 3-D [N, C, L] input, got shape ", shape_str(x.shape()));
}

void BatchNorm2d::check_input(const Tensor& x) const {
  if (x.dim() != 4) fail("BatchNorm2d: expected a 4-D [N, C, H, W] input, got shape ", shape_str(x.shape()));
}

int64_t convert_sync_batchnorm(Module& model, dist::Communicator* comm) {
  std::set<BatchNorm*> seen;  // a shared child is listed under each of its names
  for (const auto& [name, m] : model.named_modules())
    if (auto* bn = dynamic_cast<BatchNorm*>(m); bn && seen.insert(bn).second) bn->sync_comm = comm;
  return int64_t(seen.size());
}

LayerNorm::LayerNorm(Shape shape, double eps, bool affine) : normalized_shape(std::move(shape)), eps(eps) {
  for (int64_t s : normalized_shape)
    if (s <= 0) fail("LayerNorm: normalized_shape must be positive, got ", shape_str(normalized_shape));
  weight = register_parameter("weight", affine ? ones(normalized_shape) : Tensor());
  bias = register_parameter("bias", affine ? zeros(normalized_shape) : Tensor());
}

Tensor LayerNorm::forward_impl(const Tensor& x) {
  return finch::layer_norm(x, normalized_shape, weight, bias, eps);
}

}  // namespace finch::nn
