// The "lowrank" edit of a model: a dense Linear or Conv2d at a module path replaced by its
// rank-r factorization, recorded in a weight file's "compress_edits" so the file loads again.
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "autograd/nn/module.h"

namespace finch::compress {

// The factorized stand-in for `dense` at rank r, with zero weights (the caller or a state dict
// fills them), as torch users write it, so capture, quantization and state dicts know both parts:
//   Linear(in, out)          → Sequential(Linear(in, r, bias=False), Linear(r, out, bias))
//   Conv2d(C, OC, k×k, s, p) → Sequential(Conv2d(C, r, k×k, s, p, bias=False), Conv2d(r, OC, 1×1, bias))
// Names: "<path>.0.weight", "<path>.1.weight", "<path>.1.bias". Grouped convs are refused.
nn::ModulePtr make_factorized(const nn::Module& dense, int64_t rank);

// The module at `path` ("features.3.conv.0") under root, or a finch::Error sentence naming the
// path when there is none.
nn::Module& module_at(nn::Module& root, const std::string& path);

// Puts `m` where the module at `path` was (Module::replace_child on its parent).
void replace_module(nn::Module& root, const std::string& path, nn::ModulePtr m);

// {"kind": "lowrank", "module": path, "rank": r, "layer": "linear" | "conv"}.
nlohmann::json lowrank_edit(const std::string& path, int64_t rank, const std::string& layer);

// Applies one "lowrank" edit: checks every field as hostile input (the module exists and is a
// dense Linear/Conv2d of the named layer kind, the rank is an integer in 1..min(in, out)) and
// replaces the module by make_factorized(). Weights come from the state dict loaded afterwards.
void apply_lowrank_edit(nn::Module& root, const nlohmann::json& edit);

}  // namespace finch::compress
