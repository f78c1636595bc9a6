// nn::init: in-place weight initializers with torch.nn.init's names, formulas and defaults.
// Each draws from `gen` (default_generator() when null) and works on f32/f64 tensors, also
// ones that require grad (they write under NoGradGuard, like torch's no_grad init).
#pragma once

#include <string>
#include <utility>

#include "framework/random.h"
#include "framework/tensor.h"

namespace finch::nn::init {

// fan_in = size(1)·receptive field, fan_out = size(0)·receptive field (needs >= 2 dims).
std::pair<int64_t, int64_t> calculate_fan_in_and_fan_out(const Tensor& t);
// torch.nn.init.calculate_gain: linear/conv*/sigmoid 1, tanh 5/3, relu √2,
// leaky_relu √(2/(1+a²)) with a = param (default 0.01), selu 3/4.
double calculate_gain(const std::string& nonlinearity, double param = 0.01);

Tensor& uniform_(Tensor& t, double a = 0.0, double b = 1.0, Generator* gen = nullptr);
Tensor& normal_(Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
Tensor& constant_(Tensor& t, double value);
Tensor& zeros_(Tensor& t);
Tensor& ones_(Tensor& t);
// Kaiming He et al. 2015: std = gain(nonlinearity, a) / √fan; uniform bound = √3·std.
// mode "fan_in" or "fan_out". Defaults as torch (a = 0, fan_in, leaky_relu).
Tensor& kaiming_uniform_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                         const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
Tensor& kaiming_normal_(Tensor& t, double a = 0.0, const std::string& mode = "fan_in",
                        const std::string& nonlinearity = "leaky_relu", Generator* gen = nullptr);
// Glorot & Bengio 2010: std = gain·√(2/(fan_in+fan_out)).
Tensor& xavier_uniform_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
Tensor& xavier_normal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// Saxe et al. 2013 (torch.nn.init.orthogonal_): the tensor viewed as [size(0), numel/size(0)] gets
// orthonormal rows (or columns, whichever are fewer), times gain: the Q of a Gaussian matrix's QR
// with R's diagonal made positive, so Q is uniform over the orthogonal matrices. Keras's default
// for recurrent kernels.
Tensor& orthogonal_(Tensor& t, double gain = 1.0, Generator* gen = nullptr);
// N(mean, std²) truncated to [a, b] by inverse-CDF sampling (torch's method), so every draw
// lands inside without rejection.
Tensor& trunc_normal_(Tensor& t, double mean = 0.0, double std = 1.0, double a = -2.0,
                      double b = 2.0, Generator* gen = nullptr);

}  // namespace finch::nn::init
