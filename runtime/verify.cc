// The program verifier (verify.h): each check collects its problems as sentences; Program throws
// the first, finch inspect prints them all.
#include "runtime/verify.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <limits>

#include "framework/checked_math.h"
#include "framework/error.h"
#include "kernels/reference.h"
#include "ops/op_schema.h"
#include "runtime/op_table.h"

namespace finch::runtime {

namespace {

using Problems = std::vector<std::string>;

// Runs `check`, adding the sentence of the finch::Error it throws; true when it passed.
bool collect(Problems& out, const std::function<void()>& check) {
  try {
    check();
    return true;
  } catch (const Error& e) {
    out.push_back(e.what());
    return false;
  }
}

// Structure: indices in range, every value computed before it is read and written once, every op
// known, and every node's inputs and attributes valid for its schema (bad_node[i] marks the nodes
// whose attributes fail: shape inference skips them). Returns false when an index is broken, so
// nothing later may index with it.
bool check_structure(const Graph& g, const std::string& what, Problems& out, std::vector<bool>& bad_node) {
  const int64_t nv = int64_t(g.values.size());
  auto in_range = [&](int32_t v) { return v >= 0 && v < nv; };
  std::vector<bool> ready(g.values.size(), false);
  for (size_t i = 0; i < g.values.size(); ++i) ready[i] = g.values[i].is_constant();
  for (int32_t v : g.inputs) {
    if (!in_range(v)) {
      out.push_back(what + ": a graph input index is out of range");
      return false;
    }
    ready[size_t(v)] = true;
  }
  bad_node.assign(g.nodes.size(), false);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const OpImpl* impl = find_op(n.op);
    const ops::OpSchema* schema = ops::find_op_schema(n.op);
    if (!impl || !schema) {
      out.push_back(what + ": node '" + n.name + "' uses op '" + n.op + "', which this runtime does not have");
      return false;
    }
    std::vector<bool> absent;
    for (int32_t v : n.inputs) absent.push_back(v == -1);
    bad_node[i] = !collect(out, [&] { schema->check_node(absent, n.attrs, what + ": " + node_where(n)); });
    for (int32_t v : n.inputs)
      if (v != -1 && (!in_range(v) || !ready[size_t(v)])) {
        out.push_back(what + ": node '" + n.name + "' (" + n.op + ") reads a value that is not computed before it");
        return false;
      }
    for (int32_t v : n.outputs) {
      if (!in_range(v) || ready[size_t(v)]) {
        out.push_back(what + ": node '" + n.name + "' writes a value another node or a constant already holds");
        return false;
      }
      ready[size_t(v)] = true;
    }
  }
  for (int32_t v : g.outputs)
    if (!in_range(v) || !ready[size_t(v)]) {
      out.push_back(what + ": a graph output is never computed");
      return false;
    }
  return true;
}

// Graph inputs: every dim at least 1 (a zero-size image divides by zero in a runner that sizes
// records by it), and every value's bytes within 64 bits.
void check_values(const Graph& g, const std::string& what, Problems& out) {
  for (int32_t v : g.inputs) {
    const Value& x = g.values[size_t(v)];
    if (x.shape.empty() || std::any_of(x.shape.begin(), x.shape.end(), [](int64_t d) { return d < 1; }))
      out.push_back(what + ": input '" + x.name + "' has shape " + shape_str(x.shape) +
                    "; expected at least one dimension, each at least 1");
  }
  for (const Value& x : g.values)
    collect(out, [&] {
      checked_mul(checked_numel(x.shape, (what + ": value '" + x.name + "'").c_str()), int64_t(dtype_size(x.dtype)),
                  (what + ": the bytes of value '" + x.name + "'").c_str());
    });
}

// Shape inference from the schema at the declared shapes: a program whose attributes ask for an
// absurd output or whose shapes disagree fails here with the node's name, before any allocation.
// f16 constants appear as f32: every op but conv2d/linear reads them widened, and those two take
// their dtype from the input activation.
void check_shapes(const Graph& g, const std::string& what, const std::vector<bool>& bad_node, Problems& out) {
  std::vector<bool> unknown(g.values.size(), false);  // outputs of a node that failed: skip readers
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    bool skip = bad_node[i];
    std::vector<ops::ValueType> in;
    for (int32_t v : n.inputs) {
      if (v < 0) {
        in.push_back({{}, std::nullopt, true});
        continue;
      }
      const Value& x = g.values[size_t(v)];
      skip = skip || unknown[size_t(v)];
      in.push_back({x.shape, x.is_constant() && x.dtype == DType::f16 ? DType::f32 : x.dtype, false});
    }
    const bool ok = !skip && collect(out, [&] {
      const std::vector<ops::ValueType> res =
          ops::infer_types(*ops::find_op_schema(n.op), in, n.attrs, what + ": " + node_where(n));
      if (res.size() != n.outputs.size())
        fail(what, ": node '", n.name, "' (", n.op, ") has ", n.outputs.size(), " outputs; expected ", res.size());
      for (size_t k = 0; k < res.size(); ++k) {
        const Value& d = g.values[size_t(n.outputs[k])];
        if (res[k].shape != d.shape || (res[k].dtype && *res[k].dtype != d.dtype))
          fail(what, ": node '", n.name, "' (", n.op, ") computes ", shape_str(res[k].shape), " ",
               res[k].dtype ? dtype_name(*res[k].dtype) : "codes", " for value '", d.name,
               "', but the program declares ", shape_str(d.shape), " ", dtype_name(d.dtype));
      }
    });
    if (!ok)
      for (int32_t v : n.outputs) unknown[size_t(v)] = true;
  }
}

// The accumulator rule (docs/quantization.md §10): qconv2d, qlinear and dq_linear reduce their
// int32 accumulator modulo 2^32, and a program must never reach that wrap. For each such node
// with constant weights (and bias) and a quantized input, the worst case over every input code
// the input dtype allows must fit int32; else the program is refused, naming the node.
void check_accumulator(const Graph& g, const Node& n, const std::string& what) {
  const bool static_q = n.op == "qconv2d" || n.op == "qlinear";
  if ((!static_q && n.op != "dq_linear") || n.inputs.size() < 2 || n.inputs[0] < 0 || n.inputs[1] < 0) return;
  const Value& w = g.values[size_t(n.inputs[1])];
  if (!w.is_constant() || w.dtype != DType::i8 || w.shape.empty()) return;  // the kernel reports it
  Tensor bias;
  int64_t max_abs_x = 255;  // dq_linear: codes in [-128, 127] around a zero point inside them
  if (static_q) {
    if (n.inputs.size() > 2 && n.inputs[2] >= 0) {
      const Value& b = g.values[size_t(n.inputs[2])];
      if (!b.is_constant() || b.dtype != DType::i32) return;
      bias = b.data;
    }
    const Value& x = g.values[size_t(n.inputs[0])];
    if (!x.quant || x.quant->zero_point.size() != 1 || (x.dtype != DType::i8 && x.dtype != DType::u8)) return;
    const int64_t lo = x.dtype == DType::u8 ? 0 : -128, hi = x.dtype == DType::u8 ? 255 : 127;
    const int64_t z = x.quant->zero_point[0];
    max_abs_x = std::max<int64_t>(0, std::max(z - lo, hi - z));
  }
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != w.shape[0])) return;  // the kernel reports it
  const auto b = quant::reference::accumulator_bound(w.data, bias, max_abs_x);
  if (b.bound > int64_t(std::numeric_limits<int32_t>::max()))
    fail(what, ": node '", n.name, "' (", n.op, ") could overflow its int32 accumulator: output channel ", b.channel,
         " reaches ", max_abs_x, " (largest |x - zx|) * ", b.abs_weight_sum, " (sum of |w|) + ", b.abs_bias,
         " (|bias|) = ", b.bound, ", expected at most 2147483647 (docs/quantization.md section 10)");
}

// Float constants must be finite: a NaN weight (a diverged checkpoint) makes every output NaN,
// which a classifier would print as a confident answer.
void check_finite_constants(const Graph& g, const std::string& what, Problems& out) {
  for (const Value& v : g.values) {
    if (!v.is_constant() || !is_floating(v.dtype) || v.data.numel() == 0) continue;
    const int64_t i = first_non_finite(v.data);
    if (i < 0) continue;
    const double x = v.data.contiguous().reshape({-1}).get({i});
    out.push_back(what + ": constant '" + v.name + "' holds " + (std::isnan(x) ? "NaN" : "an infinity") +
                  " at element " + std::to_string(i) + " of " + std::to_string(v.data.numel()) +
                  "; expected finite weights (was the model trained to divergence?)");
  }
}

// meta.mean / meta.std: the runners normalize a float image input as (x − mean[c]) / std[c], so
// each is a list of finite numbers (one, or one per input channel; an empty list means none) and
// every std is positive — a std of 0 would turn every image into infinities.
void check_meta(const Graph& g, const std::string& what, Problems& out) {
  if (!g.meta.is_object()) return;
  auto shown = [](const nlohmann::json& j) {
    std::string t = j.dump();
    return t.size() > 64 ? t.substr(0, 60) + " ..." : t;
  };
  // The fields the runners print or adopt: strings, a list of class names, a positive width.
  for (const char* key : {"model", "dataset", "precision"})
    if (const auto it = g.meta.find(key); it != g.meta.end() && !it->is_string())
      out.push_back(what + ": meta." + key + " is " + shown(*it) + "; expected a string");
  if (const auto it = g.meta.find("classes"); it != g.meta.end() &&
      (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const nlohmann::json& j) { return j.is_string(); })))
    out.push_back(what + ": meta.classes is " + shown(*it) + "; expected a list of class names");
  if (const auto it = g.meta.find("width"); it != g.meta.end() &&
      (!it->is_number() || !(it->get<double>() > 0) || !std::isfinite(it->get<double>())))
    out.push_back(what + ": meta.width is " + shown(*it) + "; expected a finite number greater than 0");
  // A transformer program's inputs take any sequence length 1..declared along dim 1 (executor.h).
  if (const auto it = g.meta.find("variable_sequence"); it != g.meta.end() && !it->is_boolean())
    out.push_back(what + ": meta.variable_sequence is " + shown(*it) + "; expected true or false");
  // How a quantized program was made (finch verify rebuilds its simulated model from it).
  if (const auto it = g.meta.find("quantization"); it != g.meta.end()) {
    const auto is_name_list = [](const nlohmann::json& j) {
      return j.is_array() && std::all_of(j.begin(), j.end(), [](const nlohmann::json& e) { return e.is_string(); });
    };
    const bool ok = it->is_object() && it->contains("mode") && (*it)["mode"].is_string() && it->contains("qconfig") &&
                    (*it)["qconfig"].is_string() && it->contains("fuse") && (*it)["fuse"].is_boolean() &&
                    it->contains("skip") && is_name_list((*it)["skip"]);
    if (!ok)
      out.push_back(what + ": meta.quantization is " + shown(*it) +
                    "; expected {\"mode\": string, \"qconfig\": string, \"fuse\": true or false, \"skip\": [names]}");
  }
  int64_t channels = -1;
  if (g.inputs.size() == 1) {
    const Shape& s = g.values[size_t(g.inputs[0])].shape;
    if (s.size() == 4) channels = s[1];
  }
  for (const char* key : {"mean", "std"}) {
    const auto it = g.meta.find(key);
    if (it == g.meta.end()) continue;
    const std::string where = what + ": meta." + key;
    if (!it->is_array() || !std::all_of(it->begin(), it->end(), [](const nlohmann::json& j) { return j.is_number(); })) {
      out.push_back(where + " is " + shown(*it) + "; expected a list of numbers");
      continue;
    }
    const size_t n = it->size();
    if (n > 1 && channels >= 0 && int64_t(n) != channels)
      out.push_back(where + " has " + std::to_string(n) + " entries; expected " +
                    (channels == 1 ? "1" : "1 or " + std::to_string(channels)) + " (one per channel of the input)");
    for (size_t c = 0; c < n; ++c) {
      const double d = (*it)[c].get<double>();
      const bool ok = std::fabs(d) <= double(std::numeric_limits<float>::max()) && (key[0] == 'm' || d > 0);
      if (!ok) {
        out.push_back(where + "[" + std::to_string(c) + "] is " + (*it)[c].dump() + "; expected a finite number" +
                      (key[0] == 'm' ? "" : " greater than 0"));
        break;
      }
    }
  }
}

std::string limit_hint() {
  return "raise the limit with FINCH_MAX_ACTIVATION_BYTES=<bytes> (finch_run --max-memory <bytes>) if the machine "
         "has the memory";
}

// Activation memory per batch image against the limit: each graph input (a tiny file may declare
// a 100000 x 100000 image), then the arena after each node, naming the first that goes over.
// Declared shapes (check_values bounded them) are what the plan and the runner allocate.
void check_input_memory(const Graph& g, const std::string& what, int64_t limit, Problems& out) {
  for (int32_t v : g.inputs) {
    const Value& x = g.values[size_t(v)];
    Shape one = x.shape;
    if (!one.empty()) one[0] = 1;
    const int64_t bytes = checked_numel(one, "input") * int64_t(dtype_size(x.dtype));
    if (bytes > limit)
      out.push_back(what + ": input '" + x.name + "' of shape " + shape_str(x.shape) + " needs " +
                    std::to_string(bytes) + " bytes per batch image, over the activation limit of " +
                    std::to_string(limit) + " bytes; " + limit_hint());
  }
}

void check_arena(const Graph& g, const std::string& what, int64_t limit, Problems& out) {
  MemoryPlan plan;
  if (!collect(out, [&] { plan = plan_memory(g); })) return;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (plan.peak_after[i] > limit) {
      const Node& n = g.nodes[i];
      out.push_back(what + ": node '" + n.name + "' (" + n.op + ") brings the activation memory to " +
                    std::to_string(plan.peak_after[i]) + " bytes per batch image (output " +
                    shape_str(g.values[size_t(n.outputs.at(0))].shape) + "), over the limit of " +
                    std::to_string(limit) + " bytes; " + limit_hint());
      return;
    }
}

}  // namespace

int64_t activation_limit(const ProgramOptions& o) {
  if (o.max_activation_bytes > 0) return o.max_activation_bytes;
  const char* env = std::getenv("FINCH_MAX_ACTIVATION_BYTES");
  if (!env || !*env) return kDefaultMaxActivationBytes;
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(env, &end, 10);
  if (*end != '\0' || errno != 0 || v < 1)
    fail("FINCH_MAX_ACTIVATION_BYTES is '", env, "'; expected a positive number of bytes");
  return int64_t(v);
}

std::vector<std::string> verify(const Graph& g, const std::string& what, const ProgramOptions& o) {
  Problems out;
  if (g.inputs.empty() || g.outputs.empty()) {
    out.push_back(what + ": the program declares no inputs or no outputs");
    return out;
  }
  std::vector<bool> bad_node;
  if (!check_structure(g, what, out, bad_node)) return out;
  const size_t before_values = out.size();
  check_values(g, what, out);
  if (out.size() != before_values) return out;  // shapes past 64 bits: inference would overflow too
  int64_t limit = 0;
  const bool limit_ok = collect(out, [&] { limit = activation_limit(o); });
  if (limit_ok) check_input_memory(g, what, limit, out);
  check_shapes(g, what, bad_node, out);
  for (size_t i = 0; i < g.nodes.size(); ++i)  // a node whose inputs failed its schema may lack x
    if (!bad_node[i]) collect(out, [&] { check_accumulator(g, g.nodes[i], what); });
  check_finite_constants(g, what, out);
  check_meta(g, what, out);
  if (limit_ok) check_arena(g, what, limit, out);
  return out;
}

int64_t check_batch_memory(const MemoryPlan& plan, int64_t batch, int64_t limit, const std::string& what,
                           int64_t declared_batch) {
  if (batch < 1) fail(what, ": the input has a batch of ", batch, "; expected at least 1 image");
  const int64_t per = (plan.arena_bytes + declared_batch - 1) / std::max<int64_t>(1, declared_batch);
  int64_t bytes = 0;
  if (__builtin_mul_overflow(per, batch, &bytes) || bytes > limit)
    fail(what, ": a batch of ", batch, " needs ", per, " bytes of activations per image, over the activation limit of ",
         limit, " bytes in all; use a smaller batch or ", limit_hint());
  return bytes;
}

}  // namespace finch::runtime
