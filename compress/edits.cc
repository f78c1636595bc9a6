// Architecture edits (see edits.h): parsing and validating the recorded edits and dispatching each
// kind to the code that reshapes the model.
#include "compress/edits.h"

#include <map>

#include "autograd/nn/conv.h"
#include "autograd/nn/linear.h"
#include "autograd/nn/norm.h"
#include "autograd/nn/rnn.h"
#include "compress/lowrank_edit.h"
#include "compress/module_surgery.h"
#include "compress/tt.h"
#include "framework/error.h"

namespace finch::compress {
namespace {

nlohmann::json parse_array(const std::string& text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception&) {
    fail(source, ": metadata '", kEditsKey, "' should be a JSON array of edits, found text that is not JSON");
  }
  if (!j.is_array()) fail(source, ": metadata '", kEditsKey, "' should be a JSON array of edits, found ", j.type_name());
  return j;
}

// A channel count from an edit: an integer in [1, current].
int64_t count(const nlohmann::json& spec, const char* key, int64_t current, const std::string& where) {
  if (!spec.contains(key)) fail(where, " has no '", key, "'");
  const auto& v = spec[key];
  if (!v.is_number_integer()) fail(where, ": '", key, "' should be an integer, found ", v.dump());
  const auto n = v.get<int64_t>();
  if (n < 1 || n > current)
    fail(where, ": '", key, "' should be a channel count in [1, ", current, "] (pruning only shrinks), found ", n);
  return n;
}

void check_type(const nlohmann::json& spec, const nn::Module& m, const std::string& where) {
  if (!spec.contains("type") || !spec["type"].is_string())
    fail(where, " should name its layer type (\"type\": \"", m.type_name(), "\")");
  if (spec["type"].get<std::string>() != m.type_name())
    fail(where, " is recorded as a ", spec["type"].get<std::string>(), " but the model has a ", m.type_name());
}

void prune_channels(nn::Module& root, const nlohmann::json& edit, const std::string& source) {
  if (!edit.contains("modules") || !edit["modules"].is_object())
    fail(source, ": a prune_channels edit needs an object 'modules' (module path -> new shape)");
  std::map<std::string, nn::Module*> mods;
  for (auto& [path, m] : root.named_modules()) mods[path] = m;
  for (const auto& [path, spec] : edit["modules"].items()) {
    const std::string where = source + ": prune_channels of module '" + path + "'";
    auto it = mods.find(path);
    if (it == mods.end()) fail(where, ": the model has no such module");
    if (!spec.is_object()) fail(where, " should be an object, found ", spec.dump());
    nn::Module* m = it->second;
    check_type(spec, *m, where);
    if (auto* c = dynamic_cast<nn::Conv2d*>(m)) {
      const int64_t g0 = c->options.groups;
      const bool dw = g0 != 1 && g0 == c->in_channels && g0 == c->out_channels;
      if (g0 != 1 && !dw) fail(where, ": a grouped conv (", g0, " groups) is never pruned");
      const int64_t in = count(spec, "in_channels", c->in_channels, where);
      const int64_t out = count(spec, "out_channels", c->out_channels, where);
      const int64_t g = spec.contains("groups") && spec["groups"].is_number_integer() ? spec["groups"].get<int64_t>() : -1;
      if (dw && (g != in || in != out))
        fail(where, ": a depthwise conv keeps groups = in_channels = out_channels, found groups ", spec.value("groups", nlohmann::json()).dump(), ", ", in, " in, ", out, " out");
      if (!dw && g != 1) fail(where, ": 'groups' should be 1, found ", spec.value("groups", nlohmann::json()).dump());
      resize_conv2d(*c, keep_first(out), keep_first(in));
    } else if (auto* b = dynamic_cast<nn::BatchNorm*>(m)) {
      resize_batch_norm(*b, keep_first(count(spec, "num_features", b->num_features, where)));
    } else if (auto* l = dynamic_cast<nn::Linear*>(m)) {
      const int64_t in = count(spec, "in_features", l->in_features, where);
      const int64_t out = count(spec, "out_features", l->out_features, where);
      resize_linear(*l, keep_first(out), keep_first(in));
    } else if (auto* r = dynamic_cast<nn::RNNBase*>(m)) {
      const int64_t in = count(spec, "input_size", r->input_size, where);
      const int64_t h = count(spec, "hidden_size", r->hidden_size, where);
      if (r->proj_size > 0 && h <= r->proj_size)
        fail(where, ": 'hidden_size' should stay above the layer's proj_size ", r->proj_size, ", found ", h);
      const int64_t D = r->bidirectional ? 2 : 1;
      resize_rnn(*r, std::vector<Keep>(size_t(r->num_layers * D), keep_first(h)), keep_first(in));
    } else {
      fail(where, ": only Conv2d, BatchNorm, Linear, LSTM and GRU layers are pruned, found a ", m->type_name());
    }
  }
}

}  // namespace

void apply_edit(nn::Module& root, const nlohmann::json& edit, const std::string& source) {
  if (!edit.is_object() || !edit.contains("kind") || !edit["kind"].is_string())
    fail(source, ": each compress edit should be an object with a string 'kind', found ", edit.dump());
  const std::string kind = edit["kind"].get<std::string>();
  if (kind == "prune_channels") return prune_channels(root, edit, source);
  if (kind == "lowrank" || kind == "tt_linear") {
    try {
      return kind == "lowrank" ? apply_lowrank_edit(root, edit) : apply_tt_edit(root, edit);
    } catch (const Error& e) {
      fail(source, ": ", e.what());
    }
  }
  fail(source, ": unknown compress edit kind '", kind, "' (this finch knows: prune_channels, lowrank, tt_linear)");
}

void apply_edits(nn::Module& root, const std::string& edits_json, const std::string& source) {
  for (const auto& e : parse_array(edits_json, source)) apply_edit(root, e, source);
  root.zero_grad();
}

std::string append_edit(const std::string& edits_json, const nlohmann::json& edit) {
  nlohmann::json a = edits_json.empty() ? nlohmann::json::array() : parse_array(edits_json, kEditsKey);
  a.push_back(edit);
  return a.dump();
}

}  // namespace finch::compress
