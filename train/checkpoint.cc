// Checkpoint and weight files of the training loop (safetensors, atomic writes).
#include "train/checkpoint.h"

#include <cmath>
#include <cstring>
#include <set>

#include "autograd/optim/optim.h"
#include "framework/error.h"
#include "framework/random.h"
#include "framework/safetensors.h"

namespace finch::train {
namespace {

constexpr const char* kFormat = kCheckpointFormat;

std::string meta(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) fail(f.source, ": checkpoint metadata has no '", key, "' entry");
  return it->second;
}

// epochs_done (a whole non-negative number), best_test_accuracy (a number in [0, 1]) and the
// history: one object per epoch done, "epoch" counting 1, 2, ..., every column of history_row
// present (metrics.csv writes them) as a number (or null, how JSON writes a NaN metric), and
// "seconds" a number, since summaries add them up.
TrainState read_state(const SafetensorsFile& f) {
  TrainState st;
  const std::string epochs = meta(f, "epochs_done");
  try {
    size_t used = 0;
    st.epochs_done = std::stoll(epochs, &used);
    if (used != epochs.size() || st.epochs_done < 0) throw std::invalid_argument(epochs);
  } catch (const std::logic_error&) {
    fail(f.source, ": checkpoint metadata 'epochs_done' should be a whole number of epochs, found '", epochs, "'");
  }
  const std::string best = meta(f, "best_test_accuracy");
  const nlohmann::json b = nlohmann::json::parse(best, nullptr, /*allow_exceptions=*/false);
  if (!b.is_number() || !(b.get<double>() >= 0 && b.get<double>() <= 1))
    fail(f.source, ": checkpoint metadata 'best_test_accuracy' should be a number in [0, 1], found '", best, "'");
  st.best_test_accuracy = b.get<double>();
  st.history = nlohmann::json::parse(meta(f, "history"), nullptr, /*allow_exceptions=*/false);
  if (!st.history.is_array())
    fail(f.source, ": checkpoint metadata 'history' should be a JSON array of per-epoch rows");
  if (int64_t(st.history.size()) != st.epochs_done)
    fail(f.source, ": checkpoint metadata 'history' has ", st.history.size(), " rows but 'epochs_done' is ",
         st.epochs_done);
  for (size_t i = 0; i < st.history.size(); ++i) {
    const nlohmann::json& row = st.history[i];
    const std::string where = f.source + ": checkpoint history row " + std::to_string(i + 1);
    if (!row.is_object()) fail(where, " should be a JSON object, found ", row.dump());
    if (!row.contains("epoch") || !row["epoch"].is_number_integer() || row["epoch"].get<int64_t>() != int64_t(i + 1))
      fail(where, " should have \"epoch\": ", i + 1, ", found ", row.dump());
    for (const char* key : {"lr", "train_loss", "train_acc", "test_loss", "test_acc", "seconds", "images_per_second"})
      if (!row.contains(key)) fail(where, " has no \"", key, "\" (every row of a training history has one)");
    if (!row["seconds"].is_number()) fail(where, ": \"seconds\" should be a number, found ", row["seconds"].dump());
    for (const auto& [key, v] : row.items())
      if (!v.is_number() && !v.is_null() && !v.is_boolean())
        fail(where, ": \"", key, "\" should be a number, found ", v.dump());
  }
  return st;
}

// The first way `d` does not fit `model`'s state_dict, as a phrase ("" when it fits): checked
// here so the message is one line (load_state_dict lists every key, PyTorch-style, over lines).
std::string mismatch(const nn::Module& model, const nn::StateDict& d, const std::string& prefix) {
  const nn::StateDict want = model.state_dict();
  for (const auto& [name, t] : want) {
    const Tensor* have = d.find(name);
    if (!have) return "there is no '" + prefix + name + "' (the model's is " + shape_str(t.shape()) + ")";
    if (have->shape() != t.shape())
      return "'" + prefix + name + "' is " + shape_str(have->shape()) + " but the model's is " + shape_str(t.shape());
  }
  for (const auto& [name, t] : d)
    if (!want.contains(name)) return "'" + prefix + name + "' is not a weight of this model";
  return "";
}

// The buffers every parameter carries after one step of the optimizers make_optimizer builds
// (the optimizer itself accepts a dict with buffers left out and would start them from zero,
// which silently breaks exact resume); other optimizers: the buffers parameter 0 has.
std::set<std::string> expected_buffers(const optim::Optimizer& opt, const std::set<std::string>& first) {
  if (const auto* sgd = dynamic_cast<const optim::SGD*>(&opt))
    return sgd->options().momentum != 0.0 ? std::set<std::string>{"momentum_buffer"} : std::set<std::string>{};
  if (const auto* adam = dynamic_cast<const optim::Adam*>(&opt)) {
    std::set<std::string> b{"step", "exp_avg", "exp_avg_sq"};
    if (adam->options().amsgrad) b.insert("max_exp_avg_sq");
    return b;
  }
  return first;
}

// Every parameter's state present and shaped like the parameter (the optimizer checks shapes
// too, but without the file's name) once the run has taken a step.
void check_optimizer_state(const std::string& path, const nn::StateDict& dict, const optim::Optimizer& opt,
                           int64_t epochs_done) {
  const auto& params = opt.params();
  std::vector<std::set<std::string>> have(params.size());
  for (const auto& [key, t] : dict) {
    if (key.rfind("state.", 0) != 0) continue;
    const size_t dot = key.find('.', 6);
    size_t i = params.size();
    try {
      if (dot != std::string::npos) i = std::stoul(key.substr(6, dot - 6));
    } catch (const std::exception&) {
    }
    if (i >= params.size())
      fail(path, ": optimizer entry 'optimizer.", key, "' does not name one of the model's ", params.size(),
           " parameters");
    const std::string buf = key.substr(dot + 1);
    if (buf != "step" && t.shape() != params[i].shape())
      fail(path, ": 'optimizer.", key, "' has shape ", shape_str(t.shape()), " but parameter ", i, " has shape ",
           shape_str(params[i].shape()));
    have[i].insert(buf);
  }
  if (epochs_done == 0) return;
  const std::set<std::string> want = expected_buffers(opt, have[0]);
  for (size_t i = 0; i < params.size(); ++i)
    for (const auto& b : want)
      if (!have[i].count(b))
        fail(path, ": checkpoint has no 'optimizer.state.", i, ".", b, "' (parameter ", i, " of shape ",
             shape_str(params[i].shape()), "); resuming without it would restart that buffer from zero");
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const optim::Optimizer& opt,
                     const TrainState& state, const Metadata& tags, const NamedTensors& extra) {
  NamedTensors t;
  for (const auto& [name, v] : model.state_dict()) t.emplace_back("model." + name, v);
  for (const auto& [name, v] : opt.state_dict()) t.emplace_back("optimizer." + name, v);
  const Generator::State s = default_generator().state();
  // The u64 words kept bit for bit in i64 by memcpy: from_vector/to_vector convert through double
  // and would round away the low 11 bits, so a resumed run's dropout masks would differ.
  Tensor bits = empty({int64_t(s.size())}, DType::i64);
  std::memcpy(bits.raw_data(), s.data(), sizeof(uint64_t) * s.size());
  t.emplace_back("rng.default", bits);
  for (const auto& [name, v] : extra) t.emplace_back("extra." + name, v);
  Metadata m = tags;
  m["format"] = kFormat;
  m["epochs_done"] = std::to_string(state.epochs_done);
  m["best_test_accuracy"] = nlohmann::json(state.best_test_accuracy).dump();
  m["history"] = state.history.dump();
  save_safetensors(path, t, m);  // atomic: temporary file + rename
}

LoadedCheckpoint load_checkpoint(const std::string& path, nn::Module& model, optim::Optimizer& opt,
                                 bool with_extra) {
  const SafetensorsFile f = load_safetensors(path);
  auto fmt = f.metadata.find("format");
  if (fmt == f.metadata.end() || fmt->second != kFormat)
    fail(path, ": not a training checkpoint (expected the checkpoint.safetensors that a training run "
               "writes, found a file without format=", kFormat, " metadata)");
  LoadedCheckpoint c;
  c.metadata = f.metadata;
  c.state = read_state(f);
  // Everything is checked before the model, optimizer or generator is touched, so a bad file
  // leaves them as they were and the message names the file.
  nn::StateDict m, o;
  for (const auto& [name, v] : f.tensors) {
    if (name.rfind("model.", 0) == 0) m.insert(name.substr(6), v);
    else if (name.rfind("optimizer.", 0) == 0) o.insert(name.substr(10), v);
    else if (name.rfind("extra.", 0) == 0 && with_extra) c.extra.emplace_back(name.substr(6), v);
    else if (name.rfind("extra.", 0) == 0)
      fail(path, ": has '", name, "', state of a run with more options (train_squad --qat's ranges) that this run "
                 "does not keep; resume it with the options that wrote it");
    else if (name != "rng.default")
      fail(path, ": unexpected tensor '", name, "' (a checkpoint holds model.*, optimizer.*, rng.default and extra.*)");
    if (first_non_finite(v) >= 0)
      fail(path, ": tensor '", name, "' holds a NaN or an infinity; the run that wrote it had diverged");
  }
  check_optimizer_state(path, o, opt, c.state.epochs_done);
  if (!f.contains("rng.default")) fail(path, ": checkpoint has no 'rng.default' tensor (the generator state)");
  const Tensor& rng = f.at("rng.default");
  Generator::State s{};
  if (rng.dtype() != DType::i64 || rng.numel() != int64_t(s.size()))
    fail(path, ": rng.default should be I64 [", s.size(), "], found ", dtype_name(rng.dtype()), " ",
         shape_str(rng.shape()));
  if (const std::string why = mismatch(model, m, "model."); !why.empty())
    fail(path, ": the weights do not fit the model: ", why);
  model.load_state_dict(m, /*strict=*/true);
  try {
    opt.load_state_dict(o);
  } catch (const Error& e) {
    fail(path, ": the optimizer state does not fit this optimizer (", e.what(), ")");
  }
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
  // NaN weights would evaluate, quantize and compile into a program printing "nan" scores.
  for (const auto& [name, v] : f.tensors)
    if ((!is_checkpoint || name.rfind("model.", 0) == 0) && first_non_finite(v) >= 0)
      fail(path, ": weight '", name, "' holds a NaN or an infinity (the run that wrote it had diverged)");
  if (const std::string why = mismatch(model, is_checkpoint ? prefixed : plain, is_checkpoint ? "model." : "");
      !why.empty())
    fail(path, ": the weights do not fit the model: ", why);
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
