// Convolutional time-series classifiers over x [B, C, T] -> logits [B, num_classes]: Wang et
// al.'s FCN and ResNet baselines, seed 002's smartwatch HAR CNN and its two ECG CNNs.
// Every size comes from the constructor (the data's channels, length and classes); the defaults
// of the widths live in models/series_spec.cc. Names follow a PyTorch module tree written the
// same way (tests/golden/make_series_goldens.py), so its state_dict loads with strict=true.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "autograd/nn/nn.h"
#include "autograd/nn/sequence.h"
#include "framework/random.h"

namespace finch::models {

// Shapes: B batch, C input channels (features per step), T steps, K classes.

// Keras's padding="same" (stride 1), as torch's padding="same": an odd kernel pads (k-1)/2 on
// both sides inside the conv; an even one (FCN's 8) needs one more on the right than on the left,
// which a conv's symmetric padding cannot express. same_conv1d() builds a plain Conv1d (padding
// (k-1)/2 when k is odd, 0 when even) and same_conv() runs it, padding the input first for an even
// k ((k-1)/2 left, k/2 right — torch's split). The pad stays outside the module so that code
// which computes a Conv1d from its fields (quant/'s QAT interceptor) sees a plain conv.
std::shared_ptr<nn::Conv1d> same_conv1d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, bool bias,
                                        Generator* gen);
Tensor same_conv(nn::Conv1d& conv, const Tensor& x);

// Padded batches for the all-convolutional FCN and ResNet1d (nn::LengthAware): the steps past a
// sample's length are zeroed after every layer (as the zeros that "same" padding reads past the
// end of a sample alone), and global average pooling divides by each sample's own length, and in
// training mode the batch norms take their statistics over the valid steps only (nn::StepMask,
// autograd/masked_batch_norm.h). A padded batch then gives what each sample gives alone in eval
// mode, and in training mode what the batch of unpadded sequences gives (torch's BatchNorm1d on
// the packed steps): padding changes neither the outputs, the gradients nor the running statistics.
// mask [B, 1, T]: 1 for t < lengths[b], else 0; lengths I64 [B] in [1, T] (one sentence if not).
Tensor time_mask(const std::string& model, const Tensor& lengths, int64_t B, int64_t T, DType dtype);
// Σ_{t < lengths[b]} h[b, c, t] / lengths[b]: h [B, C, T] -> [B, C] (finch::mean_steps, a program
// op, as the zeroing of the steps past each length is finch::mask_steps: a program computes both
// from its lengths input).
Tensor masked_mean_over_time(const Tensor& h, const Tensor& lengths);

// Wang et al. 2017 ("Time series classification from scratch with deep neural networks"), as
// Fawaz et al. 2019 ran it: three conv(same) → BN → ReLU blocks with 128, 256, 128 filters and
// kernels 8, 5, 3, global average pooling over time, Linear. widths = {w1, w2, w3}.
class FCN : public nn::Module, public nn::LengthAware {
 public:
  FCN(int64_t in_channels, int64_t num_classes, std::vector<int64_t> widths = {128, 256, 128},
      Generator* gen = nullptr);
  std::string type_name() const override { return "FCN"; }
  Tensor forward_impl(const Tensor& x) override;
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override;

  std::shared_ptr<nn::Conv1d> conv1, conv2, conv3;  // same_conv1d()
  std::shared_ptr<nn::BatchNorm1d> bn1, bn2, bn3;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::AdaptiveAvgPool1d> gap;
  std::shared_ptr<nn::Linear> fc;
};

// Wang et al.'s residual block: conv(same) k8 → BN → ReLU → k5 → BN → ReLU → k3 → BN, plus the
// shortcut, → ReLU. The shortcut is 1×1 conv + BN when the channels change and BN alone when
// they do not (Fawaz et al.'s code: "no need to expand channels because they are equal").
class ResBlock1d : public nn::Module {
 public:
  ResBlock1d(int64_t in_channels, int64_t out_channels, Generator* gen);
  std::string type_name() const override { return "ResBlock1d"; }
  Tensor forward_impl(const Tensor& x) override { return forward_masked(x, Tensor(), Tensor()); }
  // mask [B, 1, T] (time_mask of lengths: the training-mode BN statistics) and lengths I64 [B],
  // or both undefined; with lengths, every activation is zeroed past each length (mask_steps).
  Tensor forward_masked(const Tensor& x, const Tensor& mask, const Tensor& lengths);

  std::shared_ptr<nn::Conv1d> conv1, conv2, conv3;  // same_conv1d()
  std::shared_ptr<nn::BatchNorm1d> bn1, bn2, bn3;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::Sequential> shortcut;  // {Conv1d 1×1, BatchNorm1d} or {BatchNorm1d}
};

// Wang et al.'s ResNet: blocks of 64, 128, 128 channels, global average pooling, Linear.
class ResNet1d : public nn::Module, public nn::LengthAware {
 public:
  ResNet1d(int64_t in_channels, int64_t num_classes, std::vector<int64_t> widths = {64, 128, 128},
           Generator* gen = nullptr);
  std::string type_name() const override { return "ResNet1d"; }
  Tensor forward_impl(const Tensor& x) override;
  Tensor forward_with_lengths(const Tensor& x, const Tensor& lengths) override;

  std::shared_ptr<nn::Sequential> blocks;  // ResBlock1d "blocks.0", "blocks.1", ...
  std::shared_ptr<nn::AdaptiveAvgPool1d> gap;
  std::shared_ptr<nn::Linear> fc;
};

// Seed 002's smartwatch HAR CNN: `depth` × (Conv1d k4, padding 2 → ReLU → MaxPool1d(2)), global
// average pooling, Linear. Padding 2 makes each conv's output one step longer than its input
// (L + 1 ≥ 2), so every pool has a full window and any length T ≥ 1 works. With width 21 and
// depth 6 it has 20·21² + 36·21 + 6 = 9,582 parameters for C = 6, K = 6 (the seed's ≈ 9.6 k);
// features = Sequential(conv, relu, pool, conv, ...), so convs are "features.0", "features.3", ...
class HarCNN : public nn::Module {
 public:
  HarCNN(int64_t in_channels, int64_t num_classes, int64_t width = 21, int64_t depth = 6,
         Generator* gen = nullptr);
  std::string type_name() const override { return "HarCNN"; }
  Tensor forward_impl(const Tensor& x) override;

  std::shared_ptr<nn::Sequential> features;
  std::shared_ptr<nn::AdaptiveAvgPool1d> gap;
  std::shared_ptr<nn::Linear> fc;
};

// Seed 002's plain ECG CNN (PTB-XL, 12 leads × 1000 samples, 5 multi-label classes, 8.1 M
// parameters): 4 × (Conv1d k5 same → BN → ReLU → MaxPool1d(2)) with widths {32, 64, 64, 64},
// flatten, Linear(64·T/16, hidden 2048) → ReLU → Dropout → Linear(K). The flatten ties the first
// Linear to the length, so T comes from the data (seq_len) and the model takes only that length.
// At 12 × 1000 and K = 5: 8,192,549 parameters.
class EcgCNN : public nn::Module {
 public:
  EcgCNN(int64_t in_channels, int64_t seq_len, int64_t num_classes,
         std::vector<int64_t> widths = {32, 64, 64, 64}, int64_t hidden = 2048, double dropout = 0.5,
         Generator* gen = nullptr);
  std::string type_name() const override { return "EcgCNN"; }
  Tensor forward_impl(const Tensor& x) override;

  int64_t seq_len;
  std::shared_ptr<nn::Sequential> features;    // conv "features.0", bn "features.1", ...
  std::shared_ptr<nn::Sequential> classifier;  // Linear "classifier.0", ReLU, Dropout, Linear "classifier.3"
};

// Residual block of the ECG ResNet: conv k7 → BN → ReLU → conv k7 → BN, + shortcut (1×1 conv +
// BN when the channels change, else identity), → ReLU. Convs without bias (BN follows).
class EcgBlock : public nn::Module {
 public:
  EcgBlock(int64_t in_channels, int64_t out_channels, Generator* gen);
  std::string type_name() const override { return "EcgBlock"; }
  Tensor forward_impl(const Tensor& x) override;

  std::shared_ptr<nn::Conv1d> conv1, conv2;
  std::shared_ptr<nn::BatchNorm1d> bn1, bn2;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::Sequential> shortcut;  // null: identity
};

// Seed 002's residual ECG CNN with global average pooling (≈ 166 k parameters): stem conv k7
// (width w) → BN → ReLU → MaxPool1d(2), then blocks of 2w, 2w, 2w channels with a MaxPool1d(2)
// between them, global average pooling, Linear. w = 32 at 12 leads, K = 5: 163,717 parameters.
// Any T ≥ 8 works (no flatten).
class EcgResNet : public nn::Module {
 public:
  EcgResNet(int64_t in_channels, int64_t num_classes, int64_t width = 32, Generator* gen = nullptr);
  std::string type_name() const override { return "EcgResNet"; }
  Tensor forward_impl(const Tensor& x) override;

  std::shared_ptr<nn::Conv1d> conv1;
  std::shared_ptr<nn::BatchNorm1d> bn1;
  std::shared_ptr<nn::ReLU> relu;
  std::shared_ptr<nn::MaxPool1d> pool;
  std::shared_ptr<nn::ModuleList> blocks;  // EcgBlock "blocks.0", ...; `pool` between them
  std::shared_ptr<nn::AdaptiveAvgPool1d> gap;
  std::shared_ptr<nn::Linear> fc;
};

// Throws finch::Error unless x is [B, C, T] with C = in_channels and T >= min_steps.
void check_series_input(const std::string& model, const Tensor& x, int64_t in_channels, int64_t min_steps = 1);

}  // namespace finch::models
