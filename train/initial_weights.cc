// Pretrained starting weights matched by name and shape (see initial_weights.h).
#include "train/initial_weights.h"

#include <sstream>

#include "autograd/nn/linear.h"
#include "framework/error.h"
#include "framework/safetensors.h"
#include "train/checkpoint.h"

namespace finch::train {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// "'a', 'b', 'c'" for the first three names, "… (and 5 more)" after.
std::string examples(const std::vector<std::string>& names, size_t n = 3) {
  std::ostringstream s;
  for (size_t i = 0; i < names.size() && i < n; ++i) s << (i ? ", '" : "'") << names[i] << "'";
  if (names.size() > n) s << " (and " << names.size() - n << " more)";
  return s.str();
}

// The module name of the model's last Linear in registration order: the classifier of every
// zoo network (fc, classifier, classifier.1, fc3) and of any model that ends in a Linear.
std::string last_linear(nn::Module& model) {
  std::string head;
  for (const auto& [name, m] : model.named_modules())
    if (dynamic_cast<nn::Linear*>(m) != nullptr) head = name;
  return head;
}

}  // namespace

InitialWeightsReport load_initial_weights(const std::string& path, nn::Module& model, bool reinit_head) {
  const SafetensorsFile f = load_safetensors(path);
  const auto fmt = f.metadata.find("format");
  const bool checkpoint = fmt != f.metadata.end() && fmt->second == kCheckpointFormat;
  nn::StateDict file;  // a checkpoint's "model." tensors without the prefix, else every tensor
  for (const auto& [name, t] : f.tensors) {
    if (!checkpoint) file.insert(name, t);
    else if (name.rfind("model.", 0) == 0) file.insert(name.substr(6), t);
  }

  InitialWeightsReport r;
  r.head = last_linear(model);
  const std::string head_prefix = r.head.empty() ? "" : r.head + ".";
  auto in_head = [&](const std::string& name) {
    return !head_prefix.empty() && name.rfind(head_prefix, 0) == 0 && name.find('.', head_prefix.size()) == std::string::npos;
  };

  const nn::StateDict mine = model.state_dict();
  r.model_tensors = int64_t(mine.size());
  std::vector<std::string> missing, misshapen, names_in_model;
  nn::StateDict load;
  for (const auto& [name, t] : mine) {
    names_in_model.push_back(name);
    const Tensor* v = file.find(name);
    if (in_head(name)) {
      if (reinit_head || v == nullptr || v->shape() != t.shape()) {
        r.head_kept.push_back(name);
        if (r.head_reason.empty())
          r.head_reason = reinit_head ? "--reinit-head"
                          : v == nullptr ? "not in the file"
                                         : "file " + shape_str(v->shape()) + ", model " + shape_str(t.shape());
        continue;
      }
    } else if (v == nullptr) {
      if (ends_with(name, "num_batches_tracked")) r.counters_missing.push_back(name);
      else missing.push_back(name);
      continue;
    } else if (v->shape() != t.shape()) {
      misshapen.push_back("'" + name + "' is " + shape_str(v->shape()) + " in the file but " + shape_str(t.shape()) +
                          " in the model");
      continue;
    }
    if (first_non_finite(*v) >= 0)
      fail(path, ": tensor '", name, "' holds a NaN or an infinity; these weights cannot start a run");
    load.insert(name, *v);
    r.loaded.push_back(name);
  }
  for (const auto& [name, t] : file)
    if (mine.find(name) == nullptr) r.unused.push_back(name);

  std::vector<std::string> file_names;
  for (const auto& [name, t] : file) file_names.push_back(name);
  if (r.loaded.empty())
    fail(path, ": none of its ", file.size(), " tensors matches the ", mine.size(), " tensors of this ", model.type_name(),
         " by name (0 matched; the file holds ", file_names.empty() ? "nothing" : examples(file_names),
         "; the model expects ", examples(names_in_model),
         "); it is not a checkpoint of this network (check --model, or convert it with scripts/torch-to-safetensors.py)");
  if (!misshapen.empty())
    fail(path, ": ", misshapen[0], misshapen.size() > 1 ? " (and " + std::to_string(misshapen.size() - 1) + " more)" : "",
         ", outside the classifier ", r.head.empty() ? "(the model has none)" : "'" + r.head + "'",
         "; it holds another architecture, width or stem (check --model, --width, --stem)");
  if (!missing.empty())
    fail(path, ": ", missing.size(), " of the model's ", mine.size(), " tensors are not in the file (",
         examples(missing), ") while ", r.loaded.size(),
         " matched; it holds another architecture (check --model, --width, --stem)");
  try {
    model.load_state_dict(load, /*strict=*/false);  // converts f16/bf16/f64 files to the model's dtype
  } catch (const Error& e) {
    fail(path, ": the weights do not fit the model (", e.what(), ")");
  }
  return r;
}

std::string describe(const InitialWeightsReport& r) {
  std::ostringstream s;
  s << "loaded " << r.loaded.size() << " of " << r.model_tensors << " tensors";
  if (!r.head_kept.empty()) s << "; classifier '" << r.head << "' re-initialized (" << r.head_reason << ")";
  if (!r.counters_missing.empty()) s << "; " << r.counters_missing.size() << " num_batches_tracked counters start at 0";
  s << "; " << r.unused.size() << " file tensors unused";
  if (!r.unused.empty()) s << " (" << examples(r.unused) << ")";
  return s.str();
}

}  // namespace finch::train
