// Conv1d, Conv2d.
#include "autograd/nn/conv.h"

#include <cmath>

#include "autograd/nn/init.h"

namespace finch::nn {

namespace {

void check_channels(const char* op, int64_t in, int64_t out, int64_t groups) {
  if (in <= 0 || out <= 0) fail(op, ": channel counts must be positive, got in=", in, ", out=", out);
  if (groups <= 0 || in % groups != 0 || out % groups != 0)
    fail(op, ": in_channels (", in, ") and out_channels (", out, ") must be divisible by groups (",
         groups, ")");
}

// torch's _ConvNd.reset_parameters.
void conv_init(Tensor& weight, Tensor& bias, Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (bias.defined()) {
    const int64_t fan_in = init::calculate_fan_in_and_fan_out(weight).first;
    const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
    init::uniform_(bias, -bound, bound, gen);
  }
}

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool bias, Generator* gen)
    : Conv2d(in, out, {k, k},
             Conv2dParams{stride, stride, padding, padding, dilation, dilation, groups}, bias, gen) {}

Conv2d::Conv2d(int64_t in, int64_t out, std::pair<int64_t, int64_t> k, const Conv2dParams& opt,
               bool with_bias, Generator* gen)
    : in_channels(in), out_channels(out), kernel_size(k), options(opt) {
  check_channels("Conv2d", in, out, opt.groups);
  if (k.first <= 0 || k.second <= 0)
    fail("Conv2d: kernel size must be positive, got (", k.first, ", ", k.second, ")");
  weight = register_parameter("weight", empty({out, in / opt.groups, k.first, k.second}));
  bias = register_parameter("bias", with_bias ? empty({out}) : Tensor());
  reset_parameters(gen);
}

void Conv2d::reset_parameters(Generator* gen) { conv_init(weight, bias, gen); }

Tensor Conv2d::forward_impl(const Tensor& x) { return finch::conv2d(x, weight, bias, options); }

Conv1d::Conv1d(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t padding,
               int64_t dilation, int64_t groups, bool with_bias, Generator* gen)
    : in_channels(in), out_channels(out), kernel_size(k), stride(stride), padding(padding),
      dilation(dilation), groups(groups) {
  check_channels("Conv1d", in, out, groups);
  if (k <= 0) fail("Conv1d: kernel size must be positive, got ", k);
  weight = register_parameter("weight", empty({out, in / groups, k}));
  bias = register_parameter("bias", with_bias ? empty({out}) : Tensor());
  reset_parameters(gen);
}

void Conv1d::reset_parameters(Generator* gen) { conv_init(weight, bias, gen); }

Tensor Conv1d::forward_impl(const Tensor& x) {
  return finch::conv1d(x, weight, bias, stride, padding, dilation, groups);
}

}  // namespace finch::nn
