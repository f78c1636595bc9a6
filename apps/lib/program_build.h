// Building .finch programs from zoo models: the fp32 program of a float model (capture, BN
// folding, activation fusion) and the integer program of a quantized one (capture of the
// simulated model, lowering), with the description (model, dataset, normalization, how it was
// quantized) that run and verify read back.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "apps/lib/train_options.h"
#include "autograd/nn/module.h"
#include "quant/prepare.h"
#include "runtime/executor.h"
#include "runtime/graph.h"

namespace finch::apps {

// meta: "model", "dataset", "mean", "std", "classes", "input" ([C, H, W]), "finch_version".
nlohmann::json program_meta(const DataOptions& o, int64_t channels, int64_t height, int64_t width,
                            const std::vector<std::string>& classes);

runtime::Graph float_program(nn::Module& model, const Tensor& example, nlohmann::json meta);
// `q` converted (fake-quant on, observers frozen). meta gains "precision" and "quantization"
// (mode, qconfig, fuse, skip) so that finch verify can rebuild the simulated model.
runtime::Graph quantized_program(quant::QuantizedModel& q, const Tensor& example, nlohmann::json meta,
                                 const std::string& mode, const std::string& qconfig);

// The simulated model's checkpoint (model weights + "quant." FakeQuantize states), the file
// finch verify compares a program with; train_cifar --qat writes the same (qat_model.safetensors).
// `edits`: the model's compress_edits (a pruned or factorized model), recorded so it reloads.
void save_simulation_state(const std::string& path, nn::Module& model, quant::QuantizedModel& q,
                           const nlohmann::json& meta, const std::string& edits = "");

// Prints a program's summary line: nodes, integer nodes, constants' bytes, arena size.
void print_program_summary(const runtime::Graph& g, const std::string& path);

}  // namespace finch::apps
