// Channel dependency analysis: which channels of which layers must be pruned together, found from
// the ops a model executes (compile/capture.h), never from a per-model table.
//
// Every activation (rank 2 or 4) and every layer's channel axis is a "space" of channels. An op
// ties channels of its inputs, outputs and layer: conv out-channels = its output's channels,
// conv in-channels = its input's; BN, activations and pools tie input = layer = output channel
// by channel; add/sub/mul tie both operands and the result (a residual add ties both branches);
// cat along channels ties each input to its offset in the result; a depthwise conv ties in = out;
// a flatten of [N, C, H, W] hands C channels of H·W features each to the Linear after it.
// Recurrent layers (lstm/gru nodes of an nn::LSTM/GRU): each layer-direction's hidden units are a
// layer axis tied to its slice of the layer's output y [.., D·H] and to its row of h_n/c_n; the
// next layer's input columns (both directions) tie to y; a select of one h_n row hands that
// direction's units on. With proj_size the cell units are an axis of their own (w_hr's columns)
// and h/y, of projection width, stay frozen. Sequence activations carry their channels on the last
// dim, so a Linear over [B, T, C] ties C as a Linear over [B, C] does.
// Channels so tied form one class; a class is pruned as a whole. Classes that touch the graph's
// input or output (the logits), an op the analysis does not know, or a grouped (not depthwise)
// conv are frozen. A group is the set of classes whose spaces are tied (one residual stage, one
// block's inner width): amounts and rankings are per group.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "autograd/nn/module.h"
#include "framework/tensor.h"

namespace finch::compress {

// A layer's channel axis that pruning slices.
enum class Role {
  conv_out,    // Conv2d (groups 1) weight rows and bias
  conv_in,     // Conv2d (groups 1) weight columns
  depthwise,   // depthwise Conv2d: weight rows, bias; in = out
  batch_norm,  // BatchNorm1d/2d weight, bias, running stats
  linear_out,  // Linear weight rows, bias
  linear_in,   // Linear weight columns, `block` features per channel
  rnn_unit,    // LSTM/GRU hidden units of layer-direction `index`: the gate rows j + g·H of
               // w_ih, w_hh, b_ih, b_hh, and w_hh's column j (w_hr's with proj_size)
  rnn_in,      // LSTM/GRU input columns of layer `index` (w_ih of both directions)
};
const char* role_name(Role r);

struct LayerAxis {
  std::string module;  // its path in the model ("layer1.0.conv1"; "" = the root)
  Role role;
  int64_t size = 0;    // channels on this axis
  int64_t block = 1;   // features per channel (linear_in after a flatten)
  int64_t index = 0;   // rnn_unit: layer·D + direction; rnn_in: layer
  int64_t min_keep = 1;  // rnn_unit: units each layer-direction keeps at least (proj_size + 1)
};

// One channel class: channel `index[i]` of axis `axis[i]` for each of its members.
struct ChannelClass {
  std::vector<std::pair<int32_t, int64_t>> members;  // (axis index, channel)
  bool frozen = false;
};

struct ChannelGroup {
  std::string name;              // the first layer axis in it ("layer1.0.conv1.out")
  std::vector<int32_t> classes;  // indices into ChannelGroups::classes, prunable ones only
  int64_t frozen_classes = 0;    // classes of this group that stay
};

struct ChannelGroups {
  std::vector<LayerAxis> axes;
  std::vector<ChannelClass> classes;
  std::vector<ChannelGroup> groups;  // groups with at least one prunable class
  int64_t prunable_channels() const;
};

// Captures `model` on `example` (a batch of one, as for compile) and derives its channel groups.
ChannelGroups analyze_channels(nn::Module& model, const Tensor& example);

}  // namespace finch::compress
