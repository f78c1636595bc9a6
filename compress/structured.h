// Structured pruning: scores the channel classes of a model's groups (compress/channel_groups.h),
// picks the weakest ones and physically removes them, so the nn model gets smaller layers (new
// Conv2d/BatchNorm/Linear shapes, weights sliced) and stays a valid, trainable model.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "compress/channel_groups.h"

namespace finch::compress {

// How a channel's importance is measured.
//  l1, l2: the norm of every filter that produces it (conv/depthwise/linear rows), summed over
//    the class's layers (Li et al. 2017, "Pruning Filters for Efficient ConvNets").
//  bn: Σ|γ| of the BatchNorms on it (Liu et al. 2017, network slimming); a class with no
//    BatchNorm falls back to l1.
//  taylor: (Σ g·w)² over the class's producing rows and BN γ/β, with the gradients the caller's
//    pass left in the parameters (Molchanov et al. 2019, eq. 8: first-order loss change).
enum class Score { l1, l2, bn, taylor };
Score parse_score(const std::string& s);  // "l1", "l2", "bn", "taylor"; a sentence otherwise

struct StructuredOptions {
  double amount = 0.5;  // fraction of each group's prunable channels to remove, in [0, 1)
  Score score = Score::l1;
  // Rank all groups' channels together (each score divided by its group's mean, so layers of
  // different scales compare) instead of `amount` of every group.
  bool global = false;
};

// One score per class (index = class index; frozen classes score 0). For Score::taylor the
// parameters must hold gradients (call taylor_scores below, or run backward yourself first).
std::vector<double> channel_scores(nn::Module& model, const ChannelGroups& groups, Score score);

// Runs `accumulate` (which should zero the grads, then run forward + backward over a few batches
// of the caller's data) and returns the Taylor scores; the grads are dropped afterwards.
std::vector<double> taylor_scores(nn::Module& model, const ChannelGroups& groups,
                                  const std::function<void(nn::Module&)>& accumulate);

// The classes to remove: `amount` of each group (rounded down), or the globally weakest, never a
// whole group.
std::vector<int32_t> select_channels(const ChannelGroups& groups, const std::vector<double>& scores,
                                     const StructuredOptions& options);

// Removes `removed` classes from the model's layers in place and returns the "prune_channels"
// edit (compress/edits.h) that rebuilds the new shapes on a fresh model.
nlohmann::json remove_channels(nn::Module& model, const ChannelGroups& groups, const std::vector<int32_t>& removed);

// Zeroes what produces the `removed` channels (their filters, biases, BN γ and β) without changing
// shapes: with ReLU-like activations, the masked model computes what the pruned one does (the test
// of remove_channels, and a way to preview the accuracy of a pruning plan).
void zero_channels(nn::Module& model, const ChannelGroups& groups, const std::vector<int32_t>& removed);

// analyze → score → select → remove in one call; `accumulate` is needed for Score::taylor only.
struct StructuredResult {
  int64_t prunable_channels = 0, removed_channels = 0;
  int64_t parameters_before = 0, parameters_after = 0;
  nlohmann::json edit;
};
StructuredResult prune_structured(nn::Module& model, const Tensor& example, const StructuredOptions& options,
                                  const std::function<void(nn::Module&)>& accumulate = {});

}  // namespace finch::compress
