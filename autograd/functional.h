// The differentiable API: every function here computes through ops/ and records its backward
// rule when grad mode is on and an input requires grad. Semantics follow torch / torch.nn.
// functional (same argument order and defaults) so PyTorch code ports line by line.
// Shape vocabulary: N batch, C channels, H/W height/width, L length, T time, E embedding,
// K kernel size, OC/IC output/input channels.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "framework/random.h"
#include "framework/tensor.h"
#include "ops/conv.h"
#include "ops/loss.h"
#include "ops/pool.h"

namespace finch {

// ---- elementwise (broadcasting like NumPy/PyTorch) — autograd/functions_elementwise.cc ----
Tensor add(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a + alpha*b
Tensor sub(const Tensor& a, const Tensor& b, double alpha = 1.0);  // a - alpha*b
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor add(const Tensor& a, double s);
Tensor mul(const Tensor& a, double s);
Tensor neg(const Tensor& a);
Tensor pow(const Tensor& a, double exponent);
Tensor pow(const Tensor& a, const Tensor& exponent);
Tensor exp(const Tensor& a);
Tensor log(const Tensor& a);
Tensor sqrt(const Tensor& a);
Tensor rsqrt(const Tensor& a);
Tensor abs(const Tensor& a);
// min/max may be omitted (std::nullopt) like torch.clamp. Gradient passes where min<=x<=max.
Tensor clamp(const Tensor& a, std::optional<double> min, std::optional<double> max);
// cond (b8) ? a : b, broadcasting all three.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
// Comparisons return b8 tensors (not differentiable).
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);

Tensor operator+(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a, const Tensor& b);
Tensor operator*(const Tensor& a, const Tensor& b);
Tensor operator/(const Tensor& a, const Tensor& b);
Tensor operator-(const Tensor& a);
Tensor operator+(const Tensor& a, double s);
Tensor operator-(const Tensor& a, double s);
Tensor operator*(const Tensor& a, double s);
Tensor operator/(const Tensor& a, double s);
Tensor operator*(double s, const Tensor& a);

// ---- activations — autograd/functions_activation.cc ----
Tensor relu(const Tensor& x);
Tensor relu6(const Tensor& x);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor sigmoid(const Tensor& x);
Tensor tanh(const Tensor& x);
// approximate: "none" (erf form) or "tanh", as torch.nn.functional.gelu.
Tensor gelu(const Tensor& x, const std::string& approximate = "none");
Tensor silu(const Tensor& x);
Tensor hardswish(const Tensor& x);
Tensor hardsigmoid(const Tensor& x);

// ---- reductions — autograd/functions_reduce.cc ----
// dims empty = all dims. Negative dims count from the end.
Tensor sum(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const std::vector<int64_t>& dims = {}, bool keepdim = false);
// Values and indices (i64) of the max along dim; the gradient goes to the (first) argmax.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim = false);
// correction = 1 is the unbiased estimator (torch.var's default).
Tensor var(const Tensor& x, const std::vector<int64_t>& dims = {}, int64_t correction = 1,
           bool keepdim = false);
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);

// ---- linear algebra — autograd/functions_linalg.cc ----
// torch.matmul semantics: 1-D/2-D/batched with broadcasting of the batch dims.
Tensor matmul(const Tensor& a, const Tensor& b);
// x [..., IN] · weight [OUT, IN]^T + bias [OUT].
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor());

// ---- convolution and pooling — autograd/functions_conv.cc ----
// The options are ops/conv.h's Conv2dParams (stride sh/sw, padding ph/pw, dilation dh/dw,
// groups): one type from a module to the kernels, the capture record and the runtime.
// x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC] or undefined.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              const Conv2dParams& p = {});
// x [N, C, L], weight [OC, C/groups, K].
Tensor conv1d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
              int64_t stride = 1, int64_t padding = 0, int64_t dilation = 1, int64_t groups = 1);
// The window is ops/pool.h's Pool2dParams (kernel kh/kw, stride sh/sw, padding ph/pw, ceil_mode,
// count_include_pad; default 2×2, stride 2). torch's stride=None (= the kernel) is the nn
// modules' constructor argument stride = 0.
Tensor max_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor avg_pool2d(const Tensor& x, const Pool2dParams& p);
Tensor adaptive_avg_pool2d(const Tensor& x, std::pair<int64_t, int64_t> output_size);

// ---- normalization, tables, dropout — autograd/functions_norm.cc ----
// x [N, C, ...]. In training mode normalizes with the batch statistics and updates the running
// ones in place (unbiased variance, as torch); in eval mode uses the running statistics.
Tensor batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var,
                  const Tensor& weight, const Tensor& bias, bool training, double momentum = 0.1,
                  double eps = 1e-5);
// Normalizes over the trailing dims given by normalized_shape.
Tensor layer_norm(const Tensor& x, const Shape& normalized_shape, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// indices (i64/i32, any shape) into weight [num_embeddings, E]; rows equal to padding_idx get
// no gradient. The backward is a scatter-add.
Tensor embedding(const Tensor& indices, const Tensor& weight, int64_t padding_idx = -1);
// Inverted dropout: keeps with probability 1-p and scales by 1/(1-p); identity when !training.
Tensor dropout(const Tensor& x, double p, bool training, Generator* gen = nullptr);

// ---- shape and layout (views where PyTorch has views) — autograd/functions_shape.cc ----
Tensor reshape(const Tensor& x, const Shape& shape);
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
Tensor permute(const Tensor& x, const std::vector<int64_t>& dims);
Tensor transpose(const Tensor& x, int64_t d0, int64_t d1);
Tensor expand(const Tensor& x, const Shape& shape);
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t end, int64_t step = 1);
Tensor narrow(const Tensor& x, int64_t dim, int64_t start, int64_t length);
Tensor select(const Tensor& x, int64_t dim, int64_t index);
Tensor squeeze(const Tensor& x, int64_t dim);
Tensor unsqueeze(const Tensor& x, int64_t dim);
Tensor contiguous(const Tensor& x);
Tensor cat(const std::vector<Tensor>& xs, int64_t dim);
Tensor stack(const std::vector<Tensor>& xs, int64_t dim);
std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim);
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim);
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// pads = {last_lo, last_hi, second_last_lo, second_last_hi, ...} as torch.nn.functional.pad;
// mode "constant" (with value), "reflect" or "replicate".
Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode = "constant",
           double value = 0.0);
Tensor to_dtype(const Tensor& x, DType dtype);

// ---- losses — autograd/functions_loss.cc ----
// Reduction (none, mean, sum) is ops/loss.h's: one enum from here to the kernels.
// logits [N, C] or [N, C, d...]; target i64 class indices [N] / [N, d...]. Targets equal to
// ignore_index contribute nothing (and are left out of the mean). label_smoothing as torch.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, Reduction reduction = Reduction::mean,
                     int64_t ignore_index = -100, double label_smoothing = 0.0);
// Multi-label: logits and float targets of the same shape; pos_weight [C] optional.
Tensor bce_with_logits(const Tensor& logits, const Tensor& target,
                       Reduction reduction = Reduction::mean, const Tensor& pos_weight = Tensor());
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);

// ---- sequence models — autograd/functions_sequence.cc ----
// One LSTM step, gates i, f, g, o as torch.nn.LSTMCell: x [B, IN], h/c [B, H],
// w_ih [4H, IN], w_hh [4H, H], b_ih/b_hh [4H] (either may be undefined). Returns {h', c'}.
std::pair<Tensor, Tensor> lstm_cell(const Tensor& x, const Tensor& h, const Tensor& c,
                                    const Tensor& w_ih, const Tensor& w_hh,
                                    const Tensor& b_ih = Tensor(), const Tensor& b_hh = Tensor());
// softmax(q kᵀ · scale + mask) v with q [..., Lq, D], k [..., Lk, D], v [..., Lk, Dv].
// mask: b8 (true = keep) or float (added), broadcastable to [..., Lq, Lk]; scale defaults to
// 1/sqrt(D); is_causal masks j > i. As torch.nn.functional.scaled_dot_product_attention.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    const Tensor& mask = Tensor(), bool is_causal = false,
                                    std::optional<double> scale = std::nullopt);

// ---- recurrent layers — autograd/functions_rnn.cc ----
// One layer-direction of torch.nn.LSTM / torch.nn.GRU over a whole sequence, as one tape node
// (ops/rnn_seq.h has the layout and the variable-length rule). x [T, B, IN] time-major;
// h0 [B, P] and c0 [B, H] or undefined (zeros); w_ih [G, IN], w_hh [G, P], b_ih/b_hh [G] or
// undefined; w_hr [P, H] (LSTM proj_size) or undefined; lengths I64 [B] in 1..T or undefined;
// reverse runs t = len-1 down to 0. Returns y [T, B, P] (0 at padded steps), h_n [B, P] and
// c_n [B, H] (undefined for the GRU).
struct RnnLayerOutput {
  Tensor y, h_n, c_n;
};
RnnLayerOutput lstm_layer(const Tensor& x, const Tensor& h0, const Tensor& c0,
                          const Tensor& w_ih, const Tensor& w_hh, const Tensor& b_ih,
                          const Tensor& b_hh, const Tensor& w_hr = Tensor(),
                          const Tensor& lengths = Tensor(), bool reverse = false);
RnnLayerOutput gru_layer(const Tensor& x, const Tensor& h0, const Tensor& w_ih,
                         const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh,
                         const Tensor& lengths = Tensor(), bool reverse = false);

}  // namespace finch
