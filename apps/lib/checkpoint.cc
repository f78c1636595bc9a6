// train_cifar's weight/checkpoint metadata and the checks of --resume (see checkpoint.h).
#include "apps/lib/checkpoint.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "apps/lib/version.h"
#include "compress/edits.h"
#include "framework/error.h"
#include "framework/safetensors.h"
#include "models/factory.h"

namespace finch::apps {
namespace {

// Metadata values are strings; the width is written as JSON so 0.5 round-trips exactly.
std::string width_str(double w) { return nlohmann::json(w).dump(); }

double parse_width(const std::string& source, const std::string& s) {
  try {
    size_t used = 0;
    const double w = std::stod(s, &used);
    if (used == s.size() && w > 0 && w <= 4) return w;  // "inf" and "nan" parse too
  } catch (const std::exception&) {
  }
  fail(source, ": metadata 'width' should be a width multiplier in (0, 4], found '", s, "'");
}

double width_of(const std::map<std::string, std::string>& metadata, const std::string& source) {
  auto it = metadata.find("width");
  return it == metadata.end() ? 1.0 : parse_width(source, it->second);
}

// "stem" metadata: "cifar" (also when absent: files from before --stem) or "imagenet".
std::string stem_of(const std::map<std::string, std::string>& metadata, const std::string& source) {
  auto it = metadata.find("stem");
  if (it == metadata.end()) return "cifar";
  if (it->second != "cifar" && it->second != "imagenet")
    fail(source, ": metadata 'stem' should be 'cifar' or 'imagenet', found '", it->second, "'");
  return it->second;
}

std::string required(const train::Metadata& m, const std::string& path, const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) fail(path, ": checkpoint metadata has no '", key, "' entry");
  return it->second;
}

}  // namespace

// A photo folder's image size: only folders are resized (the other datasets have one size).
static void add_image_size(train::Metadata& m, const DataOptions& o) {
  if (o.dataset == "folder") m["image_size"] = std::to_string(o.image_size);
}

train::Metadata checkpoint_tags(const TrainOptions& o) {
  train::Metadata m = {{"model", o.model},
          {"width", width_str(o.width)},
          {"stem", o.stem},
          {"dataset", o.dataset},
          {"optimizer", o.optimizer},
          {"finch_version", finch_version()}};
  add_image_size(m, o);
  return m;
}

train::Metadata weight_metadata(const DataOptions& o) {
  train::Metadata m = {{"model", o.model},
                       {"width", width_str(o.width)},
                       {"stem", o.stem},
                       {"dataset", o.dataset},
                       {"finch_version", finch_version()}};
  add_image_size(m, o);
  return m;
}

void save_weights(const std::string& path, const nn::Module& model, const DataOptions& o) {
  train::save_weights(path, model, weight_metadata(o));
}

models::CreateOptions zoo_options(const DataOptions& o, int64_t input_size, Generator* gen) {
  models::CreateOptions co;
  co.cifar = o.stem != "imagenet";
  co.input_size = input_size;
  co.width_mult = o.width;
  co.gen = gen;
  return co;
}

train::TrainState resume_checkpoint(const TrainOptions& o, nn::Module& model, optim::Optimizer& opt) {
  const train::LoadedCheckpoint c = train::load_checkpoint(o.resume, model, opt);
  const std::string model_name = required(c.metadata, o.resume, "model");
  const std::string dataset = required(c.metadata, o.resume, "dataset");
  const std::string optimizer = required(c.metadata, o.resume, "optimizer");
  const double width = width_of(c.metadata, o.resume);
  const std::string stem = stem_of(c.metadata, o.resume);
  if (model_name != o.model || dataset != o.dataset || optimizer != o.optimizer)
    fail(o.resume, " was written by a ", model_name, " run on ", dataset, " with ", optimizer, ", not ", o.model,
         " on ", o.dataset, " with ", o.optimizer);
  if (width != o.width) fail(o.resume, " holds a ", model_name, " of width ", width, " but --width is ", o.width);
  if (stem != o.stem) fail(o.resume, " holds a ", model_name, " with the ", stem, " stem but --stem is ", o.stem);
  if (c.state.epochs_done >= o.epochs)
    fail(o.resume, " already holds ", c.state.epochs_done, " epochs; raise --epochs (now ", o.epochs,
         ") to train further");
  return c.state;
}

std::string edits_in(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find(compress::kEditsKey);
  return it == f.metadata.end() ? "" : it->second;
}

void load_weights(const std::string& path, nn::Module& model) {
  if (const std::string edits = edits_in(path); !edits.empty()) compress::apply_edits(model, edits, path);
  train::load_weights(path, model);
}

std::string model_name_in(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("model");
  return it == f.metadata.end() ? "" : it->second;
}

std::string stem_in(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  return f.metadata.count("stem") ? stem_of(f.metadata, f.source) : "";
}

double width_in(const std::string& path) {
  const SafetensorsFile f = load_safetensors(path);
  return width_of(f.metadata, f.source);
}

void adopt_model_of(const std::string& path, DataOptions& o, bool model_given, bool width_given) {
  const SafetensorsFile f = load_safetensors(path);
  auto it = f.metadata.find("model");
  if (it != f.metadata.end() && !it->second.empty()) {
    // An unknown name (a damaged or foreign file): --model decides, the weights' shapes check it.
    const auto& names = models::model_names();
    if (std::find(names.begin(), names.end(), it->second) == names.end()) {
      if (!model_given) fail(path, ": metadata 'model' names '", it->second, "', which is not a finch model; give --model");
    } else {
      if (model_given && it->second != o.model) fail(path, " holds a ", it->second, " but --model is ", o.model);
      o.model = it->second;
    }
  } else if (!model_given) {
    fail(path, " does not name its model; give --model");
  }
  if (f.metadata.count("width")) {
    const double w = width_of(f.metadata, f.source);
    if (width_given && w != o.width) fail(path, " holds a ", o.model, " of width ", w, " but --width is ", o.width);
    o.width = w;
  }
  const std::string stem = stem_of(f.metadata, f.source);
  if (o.stem_given && f.metadata.count("stem") && stem != o.stem)
    fail(path, " holds a ", o.model, " with the ", stem, " stem but --stem is ", o.stem);
  if (!o.stem_given) o.stem = stem;
  // The photo size the weights were trained at (folder runs), unless --image-size says otherwise.
  if (const auto it = f.metadata.find("image_size"); it != f.metadata.end() && !o.image_size_given) {
    const std::string& s = it->second;
    if (s.empty() || s.size() > 4 || s.find_first_not_of("0123456789") != std::string::npos || std::stoi(s) < 8 ||
        std::stoi(s) > 1024)
      fail(path, ": metadata 'image_size' should be a whole number in [8, 1024], found '", s, "'");
    o.image_size = std::stoi(s);
  }
}

}  // namespace finch::apps
