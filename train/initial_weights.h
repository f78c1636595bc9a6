// Starting a training run from pretrained weights (timm's --initial-checkpoint, PyTorch's
// load_state_dict(strict=False) plus a new classifier): every tensor of the file whose name and
// shape match the model's is copied in; the classifier (the model's last Linear, "the head") is
// left at its fresh initialization when its shape differs (another class count) or on request.
//
// Names are PyTorch's state_dict names, which finch's zoo shares with torchvision (ResNet-18/34/50
// and MobileNetV2 with --stem imagenet; tests/models checks the key lists), so a torchvision
// state_dict converted by scripts/torch-to-safetensors.py loads with no name map.
//
// Refused, with one finch::Error sentence naming the file, before the model changes:
//   - no tensor matches at all (how many each side holds, and examples of both sides' names);
//   - a tensor outside the head with another shape (another architecture, width or stem);
//   - tensors of the model outside the head missing from the file (num_batches_tracked, a counter
//     the training never reads with BatchNorm's default momentum, may be missing);
//   - a NaN or infinity in a tensor that would be loaded.
// Tensors of the file the model has no place for are reported, not refused (a torchvision file
// for a network whose auxiliary branch finch leaves out, say).
#pragma once

#include <string>
#include <vector>

#include "autograd/nn/module.h"

namespace finch::train {

struct InitialWeightsReport {
  std::string head;                          // module name of the last Linear ("" when none)
  std::vector<std::string> loaded;           // model tensors copied from the file
  std::vector<std::string> head_kept;        // head tensors left at their initialization
  std::string head_reason;                   // why: "--reinit-head", or "file [1000, 1280], model [10, 1280]"
  std::vector<std::string> unused;           // file tensors the model has no place for
  std::vector<std::string> counters_missing; // num_batches_tracked entries absent from the file
  int64_t model_tensors = 0;                 // entries of the model's state_dict
};

// Loads `path` (a weights file, or a finch training checkpoint: its "model." tensors) into
// `model` as described above. With `reinit_head` the head is never loaded.
InitialWeightsReport load_initial_weights(const std::string& path, nn::Module& model, bool reinit_head);

// One line for the log: "loaded 312 of 314 tensors; classifier.1 re-initialized (file [1000,
// 1280], model [10, 1280]); 0 file tensors unused".
std::string describe(const InitialWeightsReport& r);

}  // namespace finch::train
