// Recipes of `finch compress`: a list of variants, each a list of steps (prune, lowrank, distill,
// qat, ptq, compile) that compose, parsed from JSON with every field validated; and the named
// recipes finch ships (quick, seed003-alg1, seed003-alg2, seed004), each defined per model kind
// from the steps that kind has. Format and the per-kind table: docs/compress.md.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace finch::apps {

// The kinds of model finch compress takes (compress_model.h finds the kind from --checkpoint).
enum class ModelKind { image, bert, series };

// Fine-tuning against the uncompressed model's logits (train/distill.h), when `on`.
struct DistillSpec {
  bool on = false;
  double temperature = 4, alpha = 0.9;
};

struct PruneStep {
  bool structured = true;
  double amount = 0.5;                // structured: fraction of channels; unstructured: sparsity
  std::string criterion = "l1";       // structured: l1, l2, bn, taylor; unstructured: magnitude
  std::string schedule = "one-shot";  // unstructured: one-shot, iterative, gradual
  int64_t rounds = 3;                 // iterative
  std::string pattern;                // unstructured N:M, e.g. "2:4"
  bool global = false;
  int64_t fine_tune_epochs = 1;
  int64_t bn_batches = 32;
  double lr = 0;                      // 0: the command's default (the model's training lr / 10)
  DistillSpec distill;
};

struct LowRankStep {
  double rank = 0, energy = 0, compression = 0;  // exactly one > 0 (rank: a fraction of full rank)
  bool global = false;
  std::vector<std::string> skip;
  int64_t fine_tune_epochs = 0;
  double lr = 0;
  DistillSpec distill;
};

struct DistillStep {
  double temperature = 4, alpha = 0.9;
  int64_t epochs = 1;
  double lr = 0;
};

struct QatStep {
  int64_t epochs = 1;
  double lr = 0;  // 0: the model's training lr / 20, as train_cifar --qat
  std::string qconfig = "int8";
};

struct PtqStep {
  std::string mode = "static";  // static | dynamic
  std::string qconfig = "int8";
  std::string observer = "minmax";
  int64_t calib_batches = 32;
};

struct CompileStep {
  std::string precision;  // fp32 | int8 | fp16
};

using StepSpec = std::variant<PruneStep, LowRankStep, DistillStep, QatStep, PtqStep, CompileStep>;

struct RecipeStep {
  std::string kind;      // "prune", "lowrank", ...
  StepSpec spec;
  nlohmann::json json;   // the step as written, defaults filled (variant.json records it)
};

struct RecipeVariant {
  std::string name;
  std::vector<RecipeStep> steps;  // the last one is a compile step
};

struct Recipe {
  std::string name;  // the named recipe, or the file's "name" (else its path)
  std::string source;  // the file, or "recipe NAME"
  std::string description;
  std::vector<RecipeVariant> variants;
};

// Parses and validates a recipe: `text` is JSON, either an array of variants or an object
// {"name", "description", "variants": [...]}; a variant is {"name", "steps": [...]}; a step is
// {"step": KIND, field: value, ...}. Every problem (bad JSON, unknown key, wrong type, a number
// out of range, a step order that cannot work) is a finch::Error sentence naming `source`, the
// variant, the step and the field.
Recipe parse_recipe(const std::string& text, const std::string& source);

// The named recipes shipped with finch, and their JSON text for models of kind `k` ("" for an
// unknown name). Each name means the same thing on every kind, made of the steps that kind has
// (docs/compress.md, "Named recipes").
std::vector<std::string> recipe_names();
std::string named_recipe_text(const std::string& name, ModelKind k);

// A named recipe for kind `k`, or else the JSON file at `name_or_path` (a sentence when it is neither).
Recipe load_recipe(const std::string& name_or_path, ModelKind k);

}  // namespace finch::apps
