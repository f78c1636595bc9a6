// Recipe parsing and validation for `finch compress` (see compress_recipe.h), and the named recipes.
#include "apps/lib/compress_recipe.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "framework/error.h"

namespace finch::apps {
namespace {

// The named recipes, per model kind: each name means the same thing on every kind, made of the
// steps that kind has (docs/compress.md, "Named recipes"). Epoch counts are per step;
// --limit-train shortens an image epoch, --fine-tune-steps replaces BERT's. A series or text data
// set is small (a UCR set is tens to hundreds of series, a batch of 16 each), so its fine-tuning
// and QAT run 10 and 5 passes where an image epoch is one.
struct NamedRecipe {
  std::string image, bert, series;
};

const std::map<std::string, NamedRecipe>& named_recipes() {
  static const std::string quick = R"({
  "name": "quick",
  "description": "a fast look: half the channels (hidden units; heads and FFN neurons) pruned, 1 epoch of fine-tuning, as fp32, and the model as int8",
  "variants": [
    {"name": "pruned-fp32", "steps": [
      {"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": 1},
      {"step": "compile", "precision": "fp32"}]},
    {"name": "int8", "steps": [
      {"step": "compile", "precision": "int8"}]}
  ]
})";
  // seed 003's Algorithm 1 at the granularity a kind prunes: 3 x (remove 20 % by L1, fine-tune).
  auto alg1_filters = [](const std::string& epochs) {
    const std::string round = R"(
      {"step": "prune", "method": "structured", "amount": 0.2, "criterion": "l1", "fine_tune_epochs": )" + epochs + "},";
    const std::string rounds = round + round + round;
    return R"(
    {"name": "filters-3x20", "steps": [)" + rounds + R"(
      {"step": "compile", "precision": "fp32"}]},
    {"name": "filters-3x20-int8", "steps": [)" + rounds + R"(
      {"step": "compile", "precision": "int8"}]})";
  };
  auto alg1 = [&](const std::string& epochs, const std::string& description, const std::string& unstructured) {
    return R"({
  "name": "seed003-alg1",
  "description": ")" + description + R"(",
  "variants": [)" + unstructured + alg1_filters(epochs) + R"(
  ]
})";
  };
  static const std::string alg1_image = alg1(
      "1",
      "seed 003, Algorithm 1: iterative pruning with fine-tuning (score, remove the lowest fraction, fine-tune; N "
      "times), at two granularities",
      R"(
    {"name": "weights-iterative-90", "steps": [
      {"step": "prune", "method": "unstructured", "amount": 0.9, "schedule": "iterative", "rounds": 3,
       "fine_tune_epochs": 1},
      {"step": "compile", "precision": "fp32"}]},)");
  static const std::string alg1_bert = alg1(
      "1",
      "seed 003, Algorithm 1 on BERT: 3 x (remove 20 % of the heads and FFN neurons by L1, fine-tune 1 epoch), to "
      "fp32 and to static int8",
      "");
  static const std::string alg1_series = alg1(
      "10",
      "seed 003, Algorithm 1 on a series/text model: 3 x (remove 20 % of the hidden units and channels by L1, "
      "fine-tune 10 epochs), to fp32 and to static int8",
      "");
  auto alg2 = [](const std::string& description, bool per_tensor, const std::string& qat_epochs) {
    return R"({
  "name": "seed003-alg2",
  "description": ")" + description + R"(",
  "variants": [
    {"name": "ptq-int8", "steps": [
      {"step": "ptq", "mode": "static", "qconfig": "int8"},
      {"step": "compile", "precision": "int8"}]},)" + (per_tensor ? R"(
    {"name": "ptq-int8-per-tensor", "steps": [
      {"step": "ptq", "mode": "static", "qconfig": "int8-per-tensor"},
      {"step": "compile", "precision": "int8"}]},)" : "") + R"(
    {"name": "qat-int8", "steps": [
      {"step": "qat", "epochs": )" + qat_epochs + R"(},
      {"step": "compile", "precision": "int8"}]}
  ]
})";
  };
  auto seed004 = [](const std::string& description, bool uint8_io, bool fp16, const std::string& prune_epochs) {
    return R"({
  "name": "seed004",
  "description": ")" + description + R"(",
  "variants": [
    {"name": "U1-dynamic", "steps": [
      {"step": "ptq", "mode": "dynamic", "qconfig": "int8"},
      {"step": "compile", "precision": "int8"}]},
    {"name": "U2-int8", "steps": [
      {"step": "ptq", "mode": "static", "qconfig": "int8"},
      {"step": "compile", "precision": "int8"}]},)" + (uint8_io ? R"(
    {"name": "U3-uint8-io", "steps": [
      {"step": "ptq", "mode": "static", "qconfig": "uint8-io"},
      {"step": "compile", "precision": "int8"}]},)" : "") + (fp16 ? R"(
    {"name": "U4-fp16", "steps": [
      {"step": "compile", "precision": "fp16"}]},)" : "") + R"(
    {"name": "pruned-int8", "steps": [
      {"step": "prune", "method": "structured", "amount": 0.5, "fine_tune_epochs": )" + prune_epochs + R"(},
      {"step": "compile", "precision": "int8"}]}
  ]
})";
  };
  static const std::map<std::string, NamedRecipe> r = {
      {"quick", {quick, quick, quick}},
      {"seed003-alg1", {alg1_image, alg1_bert, alg1_series}},
      {"seed003-alg2",
       {alg2("seed 003, Algorithm 2: b-bit affine quantization, post-training against quantization-aware training",
             true, "1"),
        alg2("seed 003, Algorithm 2 on BERT: static int8 against QAT (train_squad --qat, 1 epoch); no per-tensor "
             "variant (BERT's static int8 is per channel)",
             false, "1"),
        alg2("seed 003, Algorithm 2 on a series/text model: static int8; per tensor (refused with LSTM/GRU layers, "
             "whose kernels take weights per row); QAT of the LSTM/GRU layers, 5 epochs",
             true, "5")}},
      {"seed004",
       {seed004("seed 004's variants U1-U4 against the fp32 baseline (U0), plus the pruning the seed names as future "
                "work",
                true, true, "1"),
        seed004("seed 004 on BERT: U1 dynamic int8, U2 static int8, U4 fp16 against the fp32 baseline (U0), plus half "
                "the heads and FFN neurons pruned (1 epoch) to int8; no U3 (token ids in)",
                false, true, "1"),
        seed004("seed 004 on a series/text model: U1 dynamic int8, U2 static int8 against the fp32 baseline (U0), "
                "half the hidden units pruned (10 epochs) to int8; no U3, no U4 (no fp16 programs)",
                false, false, "10")}}};
  return r;
}

// One object's fields, read with their checks; what is left unread at the end is an unknown key.
class Fields {
 public:
  Fields(const nlohmann::json& j, std::string where) : j_(j), where_(std::move(where)) {}

  [[noreturn]] void bad(const std::string& key, const std::string& expected) const {
    const auto it = j_.find(key);
    fail(where_, ": field '", key, "' must be ", expected, ", found ", it == j_.end() ? "nothing" : it->dump());
  }
  bool has(const std::string& key) const { return j_.contains(key); }

  double number(const std::string& key, double lo, double hi, bool lo_open, double fallback, const char* words) {
    seen_.insert(key);
    const auto it = j_.find(key);
    if (it == j_.end()) return fallback;
    if (!it->is_number()) bad(key, words);
    const double v = it->get<double>();
    if (!std::isfinite(v) || v > hi || v < lo || (lo_open && v == lo)) bad(key, words);
    return v;
  }
  int64_t integer(const std::string& key, int64_t lo, int64_t hi, int64_t fallback) {
    seen_.insert(key);
    const auto it = j_.find(key);
    if (it == j_.end()) return fallback;
    const std::string words = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
    if (!it->is_number_integer()) bad(key, words);
    if (it->is_number_unsigned() && it->get<uint64_t>() > uint64_t(hi)) bad(key, words);
    const int64_t v = it->get<int64_t>();
    if (v < lo || v > hi) bad(key, words);
    return v;
  }
  bool boolean(const std::string& key, bool fallback) {
    seen_.insert(key);
    const auto it = j_.find(key);
    if (it == j_.end()) return fallback;
    if (!it->is_boolean()) bad(key, "true or false");
    return it->get<bool>();
  }
  std::string one_of(const std::string& key, const std::vector<std::string>& allowed, const std::string& fallback) {
    seen_.insert(key);
    const auto it = j_.find(key);
    if (it == j_.end()) {
      if (fallback.empty()) bad(key, "given (" + list(allowed) + ")");
      return fallback;
    }
    if (!it->is_string() || std::find(allowed.begin(), allowed.end(), it->get<std::string>()) == allowed.end())
      bad(key, "one of " + list(allowed));
    return it->get<std::string>();
  }
  std::string text(const std::string& key, const std::string& fallback) {
    seen_.insert(key);
    const auto it = j_.find(key);
    if (it == j_.end()) return fallback;
    if (!it->is_string() || it->get<std::string>().size() > 200) bad(key, "a string of at most 200 characters");
    return it->get<std::string>();
  }
  std::vector<std::string> strings(const std::string& key) {
    seen_.insert(key);
    const auto it = j_.find(key);
    if (it == j_.end()) return {};
    if (!it->is_array() || it->size() > 1000) bad(key, "a list of module paths");
    std::vector<std::string> v;
    for (const auto& s : *it) {
      if (!s.is_string() || s.get<std::string>().empty()) bad(key, "a list of module paths (non-empty strings)");
      v.push_back(s.get<std::string>());
    }
    return v;
  }
  const nlohmann::json* raw(const std::string& key) {
    seen_.insert(key);
    const auto it = j_.find(key);
    return it == j_.end() ? nullptr : &*it;
  }
  // Every key was read: anything else is a typo or a field this step does not take.
  void done(const std::vector<std::string>& known_words = {}) const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      if (!seen_.count(it.key())) {
        std::vector<std::string> known(seen_.begin(), seen_.end());
        fail(where_, ": unknown field '", it.key(), "' (the fields here: ", list(known.empty() ? known_words : known), ")");
      }
  }
  const std::string& where() const { return where_; }

 private:
  static std::string list(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
    return s;
  }
  const nlohmann::json& j_;
  std::string where_;
  std::set<std::string> seen_;
};

// "distill": true, false or {"temperature", "alpha"}.
DistillSpec read_distill(Fields& f) {
  DistillSpec d;
  const nlohmann::json* j = f.raw("distill");
  if (!j) return d;
  if (j->is_boolean()) {
    d.on = j->get<bool>();
    return d;
  }
  if (!j->is_object()) f.bad("distill", "true, false or {\"temperature\": T, \"alpha\": a}");
  Fields g(*j, f.where() + ", its distill");
  d.on = true;
  d.temperature = g.number("temperature", 1e-3, 1e3, false, 4, "a number in [0.001, 1000]");
  d.alpha = g.number("alpha", 0, 1, false, 0.9, "a fraction in [0, 1]");
  g.done();
  return d;
}

double read_lr(Fields& f) { return f.number("lr", 0, 10, true, 0, "a learning rate in (0, 10]"); }

PruneStep read_prune(Fields& f) {
  PruneStep p;
  p.structured = f.one_of("method", {"structured", "unstructured"}, "") == "structured";
  if (p.structured) {
    p.amount = f.number("amount", 0, 0.99, true, 0.5, "a fraction of channels in (0, 0.99]");
    p.criterion = f.one_of("criterion", {"l1", "l2", "bn", "taylor"}, "l1");
    p.schedule = f.one_of("schedule", {"one-shot"}, "one-shot");  // repeat the step for iterative filter pruning
  } else {
    p.amount = f.number("amount", 0, 0.999, true, 0.9, "a sparsity in (0, 0.999]");
    p.criterion = f.one_of("criterion", {"magnitude"}, "magnitude");
    p.schedule = f.one_of("schedule", {"one-shot", "iterative", "gradual"}, "one-shot");
    p.rounds = f.integer("rounds", 1, 100, 3);
    p.pattern = f.text("pattern", "");
    if (!p.pattern.empty()) {
      const auto c = p.pattern.find(':');
      bool ok = c != std::string::npos && c > 0 && c + 1 < p.pattern.size() &&
                p.pattern.find_first_not_of("0123456789:") == std::string::npos && p.pattern.size() <= 5;
      if (ok) {
        const int n = std::stoi(p.pattern.substr(0, c)), m = std::stoi(p.pattern.substr(c + 1));
        ok = n >= 1 && n < m && m <= 64;
      }
      if (!ok) f.bad("pattern", "N:M with 1 <= N < M <= 64, such as \"2:4\"");
      if (p.schedule != "one-shot") f.bad("schedule", "\"one-shot\" with an N:M pattern");
      if (f.has("amount")) f.bad("amount", "absent with an N:M pattern (the pattern sets the sparsity)");
    }
    if (f.has("rounds") && p.schedule != "iterative") f.bad("rounds", "absent unless the schedule is \"iterative\"");
  }
  p.global = f.boolean("global", false);
  p.fine_tune_epochs = f.integer("fine_tune_epochs", 0, 1000, 1);
  p.bn_batches = f.integer("bn_batches", 0, 100000, 32);
  p.lr = read_lr(f);
  p.distill = read_distill(f);
  if (p.schedule == "gradual" && p.fine_tune_epochs < 1)
    f.bad("fine_tune_epochs", "1 or more with the gradual schedule (it prunes while fine-tuning)");
  if (p.distill.on && p.fine_tune_epochs < 1) f.bad("fine_tune_epochs", "1 or more with distill");
  f.done();
  return p;
}

LowRankStep read_lowrank(Fields& f) {
  LowRankStep l;
  l.rank = f.number("rank", 0, 1, true, 0, "a fraction of each layer's full rank in (0, 1]");
  l.energy = f.number("energy", 0, 1, true, 0, "a kept-energy fraction in (0, 1]");
  l.compression = f.number("compression", 1, 1e9, false, 0, "a parameter compression factor >= 1");
  if ((l.rank > 0) + (l.energy > 0) + (l.compression > 0) != 1)
    fail(f.where(), ": give exactly one of the fields 'rank', 'energy' and 'compression'");
  l.global = f.boolean("global", false);
  if (l.global && l.compression <= 0) f.bad("global", "false unless 'compression' is given");
  l.skip = f.strings("skip");
  l.fine_tune_epochs = f.integer("fine_tune_epochs", 0, 1000, 0);
  l.lr = read_lr(f);
  l.distill = read_distill(f);
  if (l.distill.on && l.fine_tune_epochs < 1) f.bad("fine_tune_epochs", "1 or more with distill");
  f.done();
  return l;
}

DistillStep read_distill_step(Fields& f) {
  DistillStep d;
  d.temperature = f.number("temperature", 1e-3, 1e3, false, 4, "a number in [0.001, 1000]");
  d.alpha = f.number("alpha", 0, 1, false, 0.9, "a fraction in [0, 1]");
  d.epochs = f.integer("epochs", 1, 1000, 1);
  d.lr = read_lr(f);
  f.done();
  return d;
}

const std::vector<std::string> kInt8Qconfigs = {"int8", "int8-per-tensor", "uint8-io", "int8-weights-only"};

QatStep read_qat(Fields& f) {
  QatStep q;
  q.epochs = f.integer("epochs", 1, 1000, 1);
  q.lr = read_lr(f);
  q.qconfig = f.one_of("qconfig", kInt8Qconfigs, "int8");
  f.done();
  return q;
}

PtqStep read_ptq(Fields& f) {
  PtqStep p;
  p.mode = f.one_of("mode", {"static", "dynamic"}, "static");
  p.qconfig = f.one_of("qconfig", kInt8Qconfigs, "int8");
  p.observer = f.one_of("observer", {"minmax", "moving-average", "histogram-mse", "percentile", "entropy"}, "minmax");
  p.calib_batches = f.integer("calib_batches", 1, 100000, 32);
  f.done();
  return p;
}

RecipeStep read_step(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) fail(where, " must be an object such as {\"step\": \"prune\", ...}, found ", j.dump());
  const auto kind_it = j.find("step");
  const std::vector<std::string> kinds = {"prune", "lowrank", "distill", "qat", "ptq", "compile"};
  if (kind_it == j.end() || !kind_it->is_string() ||
      std::find(kinds.begin(), kinds.end(), kind_it->get<std::string>()) == kinds.end())
    fail(where, ": field 'step' must be one of prune, lowrank, distill, qat, ptq, compile, found ",
         kind_it == j.end() ? "nothing" : kind_it->dump());
  RecipeStep s;
  s.kind = kind_it->get<std::string>();
  Fields f(j, where + " (" + s.kind + ")");
  f.text("step", "");
  if (s.kind == "prune") s.spec = read_prune(f);
  else if (s.kind == "lowrank") s.spec = read_lowrank(f);
  else if (s.kind == "distill") s.spec = read_distill_step(f);
  else if (s.kind == "qat") s.spec = read_qat(f);
  else if (s.kind == "ptq") s.spec = read_ptq(f);
  else {
    s.spec = CompileStep{f.one_of("precision", {"fp32", "int8", "fp16"}, "")};
    f.done();
  }
  s.json = j;
  return s;
}

// Steps that change the float model come first; then at most one of qat/ptq; last one compile.
void check_order(const RecipeVariant& v, const std::string& where) {
  const auto& st = v.steps;
  if (st.empty()) fail(where, ": 'steps' is empty; a variant ends with a compile step");
  if (st.back().kind != "compile")
    fail(where, ": the last step must be {\"step\": \"compile\", \"precision\": \"fp32\" | \"int8\" | \"fp16\"}, found ",
         st.back().kind);
  const std::string precision = std::get<CompileStep>(st.back().spec).precision;
  for (size_t i = 0; i + 1 < st.size(); ++i) {
    const std::string& k = st[i].kind;
    const std::string at = where + ", step " + std::to_string(i + 1) + " (" + k + ")";
    if (k == "compile") fail(at, ": compile is the variant's last step only (one program per variant)");
    if ((k == "qat" || k == "ptq") && i + 2 != st.size())
      fail(at, ": ", k, " must come right before the compile step (later steps would lose its quantization)");
    if ((k == "qat" || k == "ptq") && precision != "int8")
      fail(at, ": ", k, " makes an int8 model, but the compile step asks for ", precision);
  }
}

}  // namespace

Recipe parse_recipe(const std::string& text, const std::string& source) {
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail(source, " is not valid JSON (a recipe is a list of variants; docs/compress.md)");
  Recipe r;
  r.source = source;
  r.name = source;
  const nlohmann::json* variants = &j;
  nlohmann::json holder;
  if (j.is_object()) {
    Fields f(j, source);
    r.name = f.text("name", source);
    r.description = f.text("description", "");
    const nlohmann::json* v = f.raw("variants");
    if (!v) fail(source, ": field 'variants' is missing (a list of {\"name\", \"steps\"})");
    f.done();
    holder = *v;
    variants = &holder;
  }
  if (!variants->is_array() || variants->empty() || variants->size() > 64)
    fail(source, ": 'variants' must be a list of 1 to 64 variants, found ", variants->dump().substr(0, 80));
  std::set<std::string> names;
  for (size_t vi = 0; vi < variants->size(); ++vi) {
    const nlohmann::json& vj = (*variants)[vi];
    const std::string at = source + ": variant " + std::to_string(vi + 1);
    if (!vj.is_object()) fail(at, " must be an object {\"name\", \"steps\"}, found ", vj.dump().substr(0, 80));
    Fields f(vj, at);
    RecipeVariant v;
    v.name = f.text("name", "");
    const bool reserved = v.name == "baseline" || v.name == "report.json" || v.name == "report.html" ||
                          (v.name.size() >= 8 && v.name.compare(v.name.size() - 8, 8, ".partial") == 0);
    const bool name_ok = !v.name.empty() && v.name.size() <= 64 && !reserved && v.name[0] != '.' &&
                         v.name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
                             std::string::npos;
    if (!name_ok)
      f.bad("name", "1 to 64 letters, digits, '_', '-' or '.' (a folder name; not 'baseline', 'report.json', 'report.html', nor starting with '.' or ending with '.partial')");
    if (!names.insert(v.name).second) fail(at, ": the name '", v.name, "' is used by an earlier variant");
    const std::string where = source + ": variant '" + v.name + "'";
    const nlohmann::json* steps = f.raw("steps");
    f.done();
    if (!steps || !steps->is_array() || steps->size() > 32)
      fail(where, ": field 'steps' must be a list of at most 32 steps, found ", steps ? steps->dump().substr(0, 80) : "nothing");
    for (size_t si = 0; si < steps->size(); ++si)
      v.steps.push_back(read_step((*steps)[si], where + ", step " + std::to_string(si + 1)));
    check_order(v, where);
    r.variants.push_back(std::move(v));
  }
  return r;
}

std::vector<std::string> recipe_names() {
  std::vector<std::string> v;
  for (const auto& [k, _] : named_recipes()) v.push_back(k);
  return v;
}

std::string named_recipe_text(const std::string& name, ModelKind k) {
  const auto it = named_recipes().find(name);
  if (it == named_recipes().end()) return "";
  return k == ModelKind::bert ? it->second.bert : k == ModelKind::series ? it->second.series : it->second.image;
}

Recipe load_recipe(const std::string& name_or_path, ModelKind k) {
  if (const std::string t = named_recipe_text(name_or_path, k); !t.empty()) return parse_recipe(t, "recipe " + name_or_path);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(name_or_path, ec)) {
    std::string names;
    for (const auto& n : recipe_names()) names += (names.empty() ? "" : ", ") + n;
    fail("--recipe '", name_or_path, "' is neither a recipe file nor a named recipe (", names, ")");
  }
  if (std::filesystem::file_size(name_or_path, ec) > (1u << 20))
    fail(name_or_path, ": a recipe is at most 1 MiB of JSON; this file is larger");
  std::ifstream in(name_or_path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  if (!in.good() && !in.eof()) fail(name_or_path, ": cannot read the recipe file");
  return parse_recipe(s.str(), name_or_path);
}

}  // namespace finch::apps
