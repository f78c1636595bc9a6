// Checkpoint and weight files of train_cifar (safetensors, atomic writes).
#include "apps/lib/checkpoint.h"

#include <cstring>

#include "apps/lib/train_options.h"
#include "apps/lib/version.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"

namespace finch::apps {
namespace {

constexpr const char* kFormat = "finch-train-checkpoint";

std::string meta(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) fail(f.source, ": checkpoint metadata has no '", key, "' entry");
  return it->second;
}

// Metadata values are strings; the width is written as JSON so 0.5 round-trips exactly.
std::string width_str(double w) { return nlohmann::json(w).dump(); }

double parse_width(const std::string& source, const std::string& s) {
  try {
    size_t used = 0;
    const double w = std::stod(s, &used);
    if (used == s.size() && w > 0) return w;
  } catch (const std::exception&) {
  }
  fail(source, ": metadata 'width' should be a positive number, found '", s, "'");
}

double width_of(const SafetensorsFile& f) {
  auto it = f.metadata.find("width");
  return it == f.metadata.end() ? 1.0 : parse_width(f.source, it->second);
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const CheckpointInfo& info) {
  NamedTensors t;
  for (const auto& [name, v] : model.state_dict()) t.emplace_back("model." + name, v);
  for (const auto& [name, v] : opt.state_dict()) t.emplace_back("optimizer." + name, v);
  const Generator::State s = default_generator().state();
  std::vector<int64_t> bits(s.size());
  std::memcpy(bits.data(), s.data(), sizeof(uint64_t) * s.size());  // u64 bits kept exactly in i64
  t.emplace_back("rng.default", from_vector<int64_t>(bits, {int64_t(bits.size())}));
  save_safetensors(path, t,
                   {{"format", kFormat},
                    {"model", info.model},
                    {"width", width_str(info.width)},
                    {"dataset", info.dataset},
                    {"optimizer", info.optimizer},
                    {"epochs_done", std::to_string(info.epochs_done)},
                    {"best_test_accuracy", nlohmann::json(info.best_test_accuracy).dump()},
                    {"history", info.history.dump()},
                    {"finch_version", finch_version()}});
}

CheckpointInfo load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt) {
  const SafetensorsFile f = load_safetensors(path);
  auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != kFormat)
    fail(path, ": not a training checkpoint (expected the checkpoint.safetensors that train_cifar "
               "writes, found a file without format=", kFormat, " metadata)");
  CheckpointInfo info;
  info.model = meta(f, "model");
  info.dataset = meta(f, "dataset");
  info.optimizer = meta(f, "optimizer");
  info.width = width_of(f);
  try {
    info.epochs_done = std::stoll(meta(f, "epochs_done"));
    info.best_test_accuracy = nlohmann::json::parse(meta(f, "best_test_accuracy")).get<double>();
    info.history = nlohmann::json::parse(meta(f, "history"));
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
  const auto bits = rng.to_vector<int64_t>();
  std::memcpy(s.data(), bits.data(), sizeof(uint64_t) * s.size());
  default_generator().set_state(s);
  return info;
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

void save_weights(const std::string& path, const nn::Module& model, const std::string& model_name,
                  const std::string& dataset, double width) {
  NamedTensors t;
  for (const auto& [name, v] : model.state_dict()) t.emplace_back(name, v);
  save_safetensors(path, t, {{"model", model_name}, {"width", width_str(width)}, {"dataset", dataset},
                             {"finch_version", finch_version()}});
}

std::string model_name_in(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("model");
  return it == f.metadata.end() ? "" : it->second;
}

double width_in(const std::string& path) { return width_of(load_safetensors(path)); }

void adopt_model_of(const std::string& path, TrainOptions& o, bool model_given, bool width_given) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("model");
  if (it != f.metadata.end() && !it->second.empty()) {
    if (model_given && it->second != o.model) fail(path, " holds a ", it->second, " but --model is ", o.model);
    o.model = it->second;
  } else if (!model_given) {
    fail(path, " does not name its model; give --model");
  }
  if (f.metadata.count("width")) {
    const double w = width_of(f);
    if (width_given && w != o.width) fail(path, " holds a ", o.model, " of width ", w, " but --width is ", o.width);
    o.width = w;
  }
}

}  // namespace finch::apps
