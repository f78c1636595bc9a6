// Programs of the series and text models (apps/lib/series_*): a captured program has one step
// count, so batches are zero padded to the longest sequence of the data with each sample's
// length (padded steps change nothing: the recurrent layers skip them); the float program of a
// model, and a program run as a batch forward that train::evaluate scores like the model.
#pragma once

#include <cstdint>
#include <utility>

#include "apps/lib/series_data.h"
#include "autograd/nn/module.h"
#include "data/dataloader.h"
#include "runtime/executor.h"
#include "runtime/graph.h"
#include "train/metrics.h"

namespace finch::apps {

// A batch's steps (the last axis: series [B, C, T], token ids [B, T]) zero padded to T steps,
// with each sample's length (all of the batch's steps when it has none).
std::pair<Tensor, Tensor> padded_to(const Tensor& x, const Tensor& lengths, int64_t T);

// The longest sequence of the training and test sets: the programs' step count.
int64_t longest_sequence(const SequenceData& d);

// The float program of `model` (capture with lengths, activations fused, constants folded),
// captured on batch `b` padded to T steps. BatchNorm stays unfolded: fold it with
// compile::fold_batch_norm where the program is deployed in float.
runtime::Graph sequence_float_graph(nn::Module& model, const data::Batch& b, int64_t T);

// Capture with a 'lengths' input for an nn::LengthAware model, without for the others (the
// fixed-length conv models: HarCNN, the ECG CNNs).
runtime::Graph capture_sequence_model(nn::Module& model, const Tensor& x, const Tensor& lengths);

// `p` as a forward over padded batches (for train::evaluate); a program without a lengths input
// gets the padded batch alone.
train::BatchForward program_forward(runtime::Program& p, int64_t T);

// The model on one batch (with its lengths when the model takes them), for calibration.
void forward_sequence_batch(nn::Module& model, const data::Batch& b);

}  // namespace finch::apps
