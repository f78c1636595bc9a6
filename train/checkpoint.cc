// Checkpoint and weight files of the training loop (safetensors, atomic writes).
#include "train/checkpoint.h"

#include <cstring>

#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"

namespace finch::train {
namespace {

constexpr const char* kFormat = "finch-train-checkpoint";

std::string meta(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) fail(f.source, ": checkpoint metadata has no '", key, "' entry");
  return it->second;
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const TrainState& state, const Metadata& tags) {
  NamedTensors t;
  for (const auto& [name, v] : model.state_dict()) t.emplace_back("model." + name, v);
  for (const auto& [name, v] : opt.state_dict()) t.emplace_back("optimizer." + name, v);
  const Generator::State s = default_generator().state();
  // The u64 words kept bit for bit in i64 by memcpy: from_vector/to_vector convert through double
  // and would round away the low 11 bits, so a resumed run's dropout masks would differ.
  Tensor bits = empty({int64_t(s.size())}, DType::i64);
  std::memcpy(bits.raw_data(), s.data(), sizeof(uint64_t) * s.size());
  t.emplace_back("rng.default", bits);
  Metadata m = tags;
  m["format"] = kFormat;
  m["epochs_done"] = std::to_string(state.epochs_done);
  m["best_test_accuracy"] = nlohmann::json(state.best_test_accuracy).dump();
  m["history"] = state.history.dump();
  save_safetensors(path, t, m);  // atomic: temporary file + rename
}

LoadedCheckpoint load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt) {
  const SafetensorsFile f = load_safetensors(path);
  auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != kFormat)
    fail(path, ": not a training checkpoint (expected the checkpoint.safetensors that a training run "
               "writes, found a file without format=", kFormat, " metadata)");
  LoadedCheckpoint c;
  c.metadata = f.metadata;
  try {
    c.state.epochs_done = std::stoll(meta(f, "epochs_done"));
    c.state.best_test_accuracy = nlohmann::json::parse(meta(f, "best_test_accuracy")).get<double>();
    c.state.history = nlohmann::json::parse(meta(f, "history"));
  } catch (const nlohmann::json::exception& e) {
    fail(path, ": unreadable checkpoint metadata (", e.what(), ")");
  } catch (const std::logic_error&) {
    fail(path, ": checkpoint metadata 'epochs_done' is not a number");
  }
  nn::StateDict m, o;
  for (const auto& [name, v] : f.tensors) {
    if (name.rfind("model.", 0) == 0) m.insert(name.substr(6), v);
    else if (name.rfind("optimizer.", 0) == 0) o.insert(name.substr(10), v);
  }
  model.load_state_dict(m, /*strict=*/true);
  opt.load_state_dict(o);
  const Tensor& rng = f.at("rng.default");
  Generator::State s{};
  if (rng.dtype() != DType::i64 || rng.numel() != int64_t(s.size()))
    fail(path, ": rng.default should be I64 [", s.size(), "], found ", dtype_name(rng.dtype()), " ",
         shape_str(rng.shape()));
  const Tensor bits = rng.contiguous();
  std::memcpy(s.data(), bits.raw_data(), sizeof(uint64_t) * s.size());  // exact bits (see save_checkpoint)
  default_generator().set_state(s);
  return c;
}

void load_weights(const std::string& path, nn::Module& model) {
  const SafetensorsFile f = load_safetensors(path);
  nn::StateDict plain, prefixed;
  for (const auto& [name, v] : f.tensors) {
    plain.insert(name, v);
    if (name.rfind("model.", 0) == 0) prefixed.insert(name.substr(6), v);
  }
  auto fmt = f.metadata.find("format");
  const bool is_checkpoint = fmt != f.metadata.end() && fmt->second == kFormat;
  try {
    model.load_state_dict(is_checkpoint ? prefixed : plain, /*strict=*/true);
  } catch (const Error& e) {
    fail(path, ": the weights do not fit the model (", e.what(), ")");
  }
}

void save_weights(const std::string& path, const nn::Module& model, const Metadata& metadata) {
  NamedTensors t;
  for (const auto& [name, v] : model.state_dict()) t.emplace_back(name, v);
  save_safetensors(path, t, metadata);
}

CheckpointCallback::CheckpointCallback(std::string dir, Metadata tags, Metadata weight_metadata)
    : dir_(std::move(dir)), tags_(std::move(tags)), weight_metadata_(std::move(weight_metadata)) {}

void CheckpointCallback::on_epoch_end(Context& ctx, const EpochEnd& e) {
  if (e.best) save_weights(best_path(), ctx.model, weight_metadata_);
  save_checkpoint(checkpoint_path(), ctx.model, ctx.opt, ctx.state, tags_);
}

}  // namespace finch::train
