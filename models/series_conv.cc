// The convolutional time-series classifiers of models/series_conv.h.
#include "models/series_conv.h"

#include <algorithm>

#include "autograd/functional.h"
#include "autograd/steps.h"

namespace finch::models {

void check_series_input(const std::string& model, const Tensor& x, int64_t in_channels, int64_t min_steps) {
  if (x.dim() != 3 || x.shape()[1] != in_channels || x.shape()[2] < min_steps)
    fail(model, ": expected an input [B, ", in_channels, ", T] with T >= ", min_steps, ", got shape ",
         shape_str(x.shape()));
}

namespace {

std::shared_ptr<nn::ReLU> relu_module() { return std::make_shared<nn::ReLU>(); }

void check_widths(const std::string& model, const std::vector<int64_t>& widths, size_t n) {
  if (widths.size() != n) fail(model, ": expected ", n, " widths, got ", widths.size());
  for (int64_t w : widths)
    if (w < 1) fail(model, ": expected positive widths, got ", w);
}

void check_sizes(const std::string& model, int64_t in_channels, int64_t num_classes) {
  if (in_channels < 1 || num_classes < 1)
    fail(model, ": expected in_channels >= 1 and num_classes >= 1, got ", in_channels, " and ", num_classes);
}

// [B, C, 1] -> [B, C].
Tensor drop_time(const Tensor& x) { return finch::flatten(x, 1); }

}  // namespace

std::shared_ptr<nn::Conv1d> same_conv1d(int64_t in, int64_t out, int64_t k, bool bias, Generator* gen) {
  return std::make_shared<nn::Conv1d>(in, out, k, /*stride=*/1, /*padding=*/k % 2 == 1 ? (k - 1) / 2 : 0, 1, 1, bias,
                                      gen);
}

Tensor same_conv(nn::Conv1d& conv, const Tensor& x) {
  const int64_t k = conv.kernel_size;
  if (k % 2 == 1) return conv.forward(x);
  return conv.forward(finch::pad(x, {(k - 1) / 2, k / 2}));
}

Tensor time_mask(const std::string& model, const Tensor& lengths, int64_t B, int64_t T, DType dtype) {
  if (lengths.dtype() != DType::i64 || lengths.dim() != 1 || lengths.size(0) != B)
    fail(model, ": expected lengths I64 [", B, "], got ", dtype_name(lengths.dtype()), " ", shape_str(lengths.shape()));
  const std::vector<int64_t> l = lengths.contiguous().to_vector<int64_t>();
  std::vector<double> m(size_t(B * T), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    if (l[size_t(b)] < 1 || l[size_t(b)] > T)
      fail(model, ": expected every length in [1, ", T, "] (the padded batch's steps), got ", l[size_t(b)]);
    std::fill(m.begin() + b * T, m.begin() + b * T + l[size_t(b)], 1.0);
  }
  return from_vector(m, {B, 1, T}).to(dtype);
}

Tensor masked_mean_over_time(const Tensor& h, const Tensor& lengths) { return finch::mean_steps(h, lengths); }

namespace {
// Global average pooling over all steps: mean_steps without lengths (no constant to freeze in a
// capture), the sum the forward with lengths does, bit for bit. FCN and ResNet1d pool with it with
// and without lengths, so the forward that quant::prepare traces (without) has the head the
// forward with lengths has: a Linear fed by a functional op, its input requantized.
Tensor mean_over_time(const Tensor& h) { return finch::mean_steps(h, Tensor()); }
}  // namespace

// ---- FCN ----

FCN::FCN(int64_t C, int64_t K, std::vector<int64_t> w, Generator* gen) {
  check_sizes("FCN", C, K);
  check_widths("FCN", w, 3);
  conv1 = register_module("conv1", same_conv1d(C, w[0], 8, true, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(w[0]));
  conv2 = register_module("conv2", same_conv1d(w[0], w[1], 5, true, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm1d>(w[1]));
  conv3 = register_module("conv3", same_conv1d(w[1], w[2], 3, true, gen));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm1d>(w[2]));
  relu = register_module("relu", relu_module());
  gap = register_module("gap", std::make_shared<nn::AdaptiveAvgPool1d>(1));
  fc = register_module("fc", std::make_shared<nn::Linear>(w[2], K, true, gen));
}

Tensor FCN::forward_impl(const Tensor& x) {
  check_series_input("FCN", x, conv1->in_channels);
  Tensor h = relu->forward(bn1->forward(same_conv(*conv1, x)));
  h = relu->forward(bn2->forward(same_conv(*conv2, h)));
  h = relu->forward(bn3->forward(same_conv(*conv3, h)));
  return fc->forward(mean_over_time(h));
}

Tensor FCN::forward_with_lengths(const Tensor& x, const Tensor& lengths) {
  nn::ForwardPass pass;  // one call site per use of a shared module (quant/ interceptors)
  if (!lengths.defined()) return forward(x);
  check_series_input("FCN", x, conv1->in_channels);
  const Tensor m = time_mask("FCN", lengths, x.size(0), x.size(2), x.dtype());
  nn::StepMask steps(m);  // training-mode BN statistics over the valid steps only
  // mask_steps (not a product with m): the program computes it from its lengths input.
  Tensor h = finch::mask_steps(x, lengths);
  h = finch::mask_steps(relu->forward(bn1->forward(same_conv(*conv1, h))), lengths);
  h = finch::mask_steps(relu->forward(bn2->forward(same_conv(*conv2, h))), lengths);
  h = finch::mask_steps(relu->forward(bn3->forward(same_conv(*conv3, h))), lengths);
  return fc->forward(masked_mean_over_time(h, lengths));
}

// ---- ResNet1d ----

ResBlock1d::ResBlock1d(int64_t in, int64_t out, Generator* gen) {
  conv1 = register_module("conv1", same_conv1d(in, out, 8, true, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(out));
  conv2 = register_module("conv2", same_conv1d(out, out, 5, true, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm1d>(out));
  conv3 = register_module("conv3", same_conv1d(out, out, 3, true, gen));
  bn3 = register_module("bn3", std::make_shared<nn::BatchNorm1d>(out));
  relu = register_module("relu", relu_module());
  shortcut = std::make_shared<nn::Sequential>();
  if (in != out) shortcut->push_back(std::make_shared<nn::Conv1d>(in, out, 1, 1, 0, 1, 1, true, gen));
  shortcut->push_back(std::make_shared<nn::BatchNorm1d>(out));
  register_module("shortcut", shortcut);
}

Tensor ResBlock1d::forward_masked(const Tensor& x, const Tensor& m, const Tensor& lengths) {
  auto masked = [&](const Tensor& t) { return lengths.defined() ? finch::mask_steps(t, lengths) : t; };
  nn::StepMask steps(m);  // training-mode BN statistics over the valid steps only (none without m)
  Tensor h = masked(relu->forward(bn1->forward(same_conv(*conv1, x))));
  h = masked(relu->forward(bn2->forward(same_conv(*conv2, h))));
  h = bn3->forward(same_conv(*conv3, h));
  return masked(relu->forward(finch::add(h, shortcut->forward(x))));
}

ResNet1d::ResNet1d(int64_t C, int64_t K, std::vector<int64_t> w, Generator* gen) {
  check_sizes("ResNet1d", C, K);
  check_widths("ResNet1d", w, 3);
  blocks = register_module("blocks", std::make_shared<nn::Sequential>());
  int64_t in = C;
  for (int64_t out : w) {
    blocks->push_back(std::make_shared<ResBlock1d>(in, out, gen));
    in = out;
  }
  gap = register_module("gap", std::make_shared<nn::AdaptiveAvgPool1d>(1));
  fc = register_module("fc", std::make_shared<nn::Linear>(in, K, true, gen));
}

Tensor ResNet1d::forward_impl(const Tensor& x) {
  check_series_input("ResNet1d", x, std::static_pointer_cast<ResBlock1d>((*blocks)[0])->conv1->in_channels);
  const Tensor h = blocks->forward(x);
  return fc->forward(mean_over_time(h));
}

Tensor ResNet1d::forward_with_lengths(const Tensor& x, const Tensor& lengths) {
  nn::ForwardPass pass;  // one call site per use of a shared module (quant/ interceptors)
  if (!lengths.defined()) return forward(x);
  check_series_input("ResNet1d", x, std::static_pointer_cast<ResBlock1d>((*blocks)[0])->conv1->in_channels);
  const Tensor m = time_mask("ResNet1d", lengths, x.size(0), x.size(2), x.dtype());
  Tensor h = finch::mask_steps(x, lengths);
  for (size_t i = 0; i < blocks->size(); ++i)
    h = std::static_pointer_cast<ResBlock1d>((*blocks)[i])->forward_masked(h, m, lengths);
  return fc->forward(masked_mean_over_time(h, lengths));
}

// ---- HAR CNN ----

HarCNN::HarCNN(int64_t C, int64_t K, int64_t width, int64_t depth, Generator* gen) {
  check_sizes("HarCNN", C, K);
  if (width < 1 || depth < 1) fail("HarCNN: expected width >= 1 and depth >= 1, got ", width, " and ", depth);
  features = register_module("features", std::make_shared<nn::Sequential>());
  int64_t in = C;
  for (int64_t i = 0; i < depth; ++i) {
    features->push_back(std::make_shared<nn::Conv1d>(in, width, 4, 1, /*padding=*/2, 1, 1, true, gen));
    features->push_back(relu_module());
    features->push_back(std::make_shared<nn::MaxPool1d>(2));
    in = width;
  }
  gap = register_module("gap", std::make_shared<nn::AdaptiveAvgPool1d>(1));
  fc = register_module("fc", std::make_shared<nn::Linear>(width, K, true, gen));
}

Tensor HarCNN::forward_impl(const Tensor& x) {
  check_series_input("HarCNN", x, std::static_pointer_cast<nn::Conv1d>((*features)[0])->in_channels);
  return fc->forward(drop_time(gap->forward(features->forward(x))));
}

// ---- ECG CNNs ----

EcgCNN::EcgCNN(int64_t C, int64_t T, int64_t K, std::vector<int64_t> w, int64_t hidden, double dropout,
               Generator* gen)
    : seq_len(T) {
  check_sizes("EcgCNN", C, K);
  check_widths("EcgCNN", w, 4);
  // Four pools halve T (floor) four times; at least one step must be left for the flatten.
  if (T < 16) fail("EcgCNN: expected seq_len >= 16 (four halvings), got ", T);
  if (hidden < 1) fail("EcgCNN: expected hidden >= 1, got ", hidden);
  if (!(dropout >= 0 && dropout < 1)) fail("EcgCNN: expected dropout in [0, 1), got ", dropout);
  features = register_module("features", std::make_shared<nn::Sequential>());
  int64_t in = C, t = T;
  for (int64_t out : w) {
    features->push_back(same_conv1d(in, out, 5, true, gen));
    features->push_back(std::make_shared<nn::BatchNorm1d>(out));
    features->push_back(relu_module());
    features->push_back(std::make_shared<nn::MaxPool1d>(2));
    in = out, t /= 2;
  }
  classifier = register_module("classifier", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
      std::make_shared<nn::Linear>(in * t, hidden, true, gen), relu_module(),
      std::make_shared<nn::Dropout>(dropout), std::make_shared<nn::Linear>(hidden, K, true, gen)}));
}

Tensor EcgCNN::forward_impl(const Tensor& x) {
  const int64_t C = std::static_pointer_cast<nn::Conv1d>((*features)[0])->in_channels;
  check_series_input("EcgCNN", x, C);
  if (x.shape()[2] != seq_len)
    fail("EcgCNN: built for series of ", seq_len, " steps (its first Linear follows a flatten), got shape ",
         shape_str(x.shape()));
  return classifier->forward(finch::flatten(features->forward(x), 1));
}

EcgBlock::EcgBlock(int64_t in, int64_t out, Generator* gen) {
  conv1 = register_module("conv1", std::make_shared<nn::Conv1d>(in, out, 7, 1, 3, 1, 1, false, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(out));
  conv2 = register_module("conv2", std::make_shared<nn::Conv1d>(out, out, 7, 1, 3, 1, 1, false, gen));
  bn2 = register_module("bn2", std::make_shared<nn::BatchNorm1d>(out));
  relu = register_module("relu", relu_module());
  if (in != out)
    shortcut = register_module("shortcut", std::make_shared<nn::Sequential>(std::initializer_list<nn::ModulePtr>{
        std::make_shared<nn::Conv1d>(in, out, 1, 1, 0, 1, 1, false, gen), std::make_shared<nn::BatchNorm1d>(out)}));
}

Tensor EcgBlock::forward_impl(const Tensor& x) {
  Tensor h = relu->forward(bn1->forward(conv1->forward(x)));
  h = bn2->forward(conv2->forward(h));
  return relu->forward(finch::add(h, shortcut ? shortcut->forward(x) : x));
}

EcgResNet::EcgResNet(int64_t C, int64_t K, int64_t w, Generator* gen) {
  check_sizes("EcgResNet", C, K);
  if (w < 1) fail("EcgResNet: expected width >= 1, got ", w);
  conv1 = register_module("conv1", std::make_shared<nn::Conv1d>(C, w, 7, 1, 3, 1, 1, false, gen));
  bn1 = register_module("bn1", std::make_shared<nn::BatchNorm1d>(w));
  relu = register_module("relu", relu_module());
  pool = register_module("pool", std::make_shared<nn::MaxPool1d>(2));
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  int64_t in = w;
  for (int i = 0; i < 3; ++i) {
    blocks->push_back(std::make_shared<EcgBlock>(in, 2 * w, gen));
    in = 2 * w;
  }
  gap = register_module("gap", std::make_shared<nn::AdaptiveAvgPool1d>(1));
  fc = register_module("fc", std::make_shared<nn::Linear>(in, K, true, gen));
}

Tensor EcgResNet::forward_impl(const Tensor& x) {
  // Three pools (after the stem and the first two blocks) need 2³ steps for a non-empty output.
  check_series_input("EcgResNet", x, conv1->in_channels, 8);
  Tensor h = pool->forward(relu->forward(bn1->forward(conv1->forward(x))));
  for (size_t i = 0; i < blocks->size(); ++i) {
    h = (*blocks)[i]->forward(h);
    if (i + 1 < blocks->size()) h = pool->forward(h);
  }
  return fc->forward(drop_time(gap->forward(h)));
}

}  // namespace finch::models
