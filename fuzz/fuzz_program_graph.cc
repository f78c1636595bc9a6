// Structure-aware libFuzzer target for .finch programs: mutates the JSON graph, not the bytes.
//
// Every input is a .finch file. The custom mutator takes it apart (header, JSON, data section),
// edits the parsed JSON graph (attribute values to huge/negative/zero/wrong types, shapes, dtypes,
// node input indices, op names, meta, quantization, constants' shapes and data ranges, a graph
// cut after any node) and writes it back with a fresh CRC-32, so almost every mutation passes the
// container checks and reaches what lies behind them: the load-time verifier of
// runtime::Program, and, when that accepts the program, the kernels, which run it once on a
// batch-1 input of the declared shape. Success or finch::Error is correct; anything else (crash,
// sanitizer report, timeout, out-of-memory, another exception) is a finding.
// Build and run: fuzz/README.md and scripts/sanitize.sh.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/error.h"
#include "framework/tensor.h"
#include "runtime/executor.h"
#include "runtime/program_file.h"

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace {

using nlohmann::json;
using Rng = std::minstd_rand;

// ---- container: split and join (bounds-checked, unlike tests/runtime/program_bytes.h, since
// the mutator also sees inputs that libFuzzer's own byte mutations have broken) ----

struct Parts {
  std::string json;
  std::vector<uint8_t> data;
};

uint64_t get_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

std::optional<Parts> split(const uint8_t* f, size_t n) {
  if (n < 32 || std::memcmp(f, "FINCHPRG", 8) != 0) return std::nullopt;
  uint32_t flags;
  std::memcpy(&flags, f + 12, 4);
  const size_t hb = (flags & 1) ? 32 : 24;
  const uint64_t j = get_u64(f + 16);
  if (j > n - 4 - hb) return std::nullopt;
  Parts p;
  if (flags & 1) {
    const uint64_t u = get_u64(f + 24);
    if (u > (uint64_t(16) << 20)) return std::nullopt;
    uLongf len = uLongf(u);
    p.json.resize(size_t(u));
    if (uncompress(reinterpret_cast<Bytef*>(p.json.data()), &len, f + hb, uLong(j)) != Z_OK)
      return std::nullopt;
    p.json.resize(len);
  } else {
    p.json.assign(reinterpret_cast<const char*>(f) + hb, size_t(j));
  }
  const size_t ds = (hb + size_t(j) + 63) / 64 * 64;
  if (ds <= n - 4) p.data.assign(f + ds, f + n - 4);
  return p;
}

void put(std::vector<uint8_t>& f, const void* p, size_t n) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  f.insert(f.end(), b, b + n);
}

// Always writes flags 0 (plain JSON), so libFuzzer's byte-level mutations, which the mutator
// also uses now and then, land on JSON text rather than on a zlib stream.
std::vector<uint8_t> join(const Parts& p) {
  std::vector<uint8_t> f;
  put(f, "FINCHPRG", 8);
  const uint32_t version = 1, flags = 0;
  const uint64_t j = p.json.size();
  put(f, &version, 4);
  put(f, &flags, 4);
  put(f, &j, 8);
  put(f, p.json.data(), p.json.size());
  f.resize((f.size() + 63) / 64 * 64, 0);
  put(f, p.data.data(), p.data.size());
  const uint32_t crc = uint32_t(crc32_z(0, f.data(), f.size()));
  put(f, &crc, 4);
  return f;
}

// ---- values the mutations write ----

const int64_t kInts[] = {0, 1, -1, 2, 3, 4, 7, 8, 16, 127, 128, -128, 255, 256, 5000, 65535, 100000,
                         (int64_t(1) << 31) - 1, int64_t(1) << 31, -(int64_t(1) << 31),
                         int64_t(1) << 32, int64_t(1) << 40, int64_t(1) << 53, int64_t(1) << 62,
                         -(int64_t(1) << 62), std::numeric_limits<int64_t>::max(),
                         std::numeric_limits<int64_t>::min()};
const double kFloats[] = {0.0, -0.0, 1e-45, 1e-38, 1e-30, -1.0, 0.5, 1e30, 3.4e38, 1e39, 1e300, -1e300};
const char* const kOps[] = {
    "adaptive_avg_pool2d", "add", "add_scalar", "avg_pool2d", "batch_norm", "cat", "conv2d",
    "dequantize", "div", "dq_linear", "flatten", "gelu", "gelu_tanh", "hardsigmoid", "hardswish",
    "leaky_relu", "linear", "max_pool2d", "mean", "mul", "mul_scalar", "qadaptive_avg_pool2d",
    "qadd", "qavg_pool2d", "qcat", "qconv2d", "qlinear", "qmax_pool2d", "qrelu", "qrelu6",
    "quantize", "relu", "relu6", "reshape", "sigmoid", "silu", "softmax", "sub", "tanh", "nope"};
const char* const kDtypes[] = {"F32", "F64", "F16", "BF16", "I8", "U8", "I16", "I32", "I64", "BOOL", "X"};
const char* const kKeys[] = {"stride", "padding", "dilation", "groups", "kernel", "ceil_mode", "act",
                             "qmin", "qmax", "axis", "dim", "shape", "eps", "scale", "alpha",
                             "output_size", "count_include_pad", "start_dim", "end_dim", "b"};

template <class T, size_t N>
const T& pick(Rng& r, const T (&a)[N]) {
  return a[r() % N];
}

json interesting_int(Rng& r, const json& old) {
  if (old.is_number_integer() && r() % 3 == 0) {
    const uint64_t o = uint64_t(old.get<int64_t>());  // wrapping arithmetic: no UB at the ends
    switch (r() % 4) {
      case 0: return int64_t(o + 1);
      case 1: return int64_t(o - 1);
      case 2: return int64_t(o * 2);
      default: return int64_t(0 - o);
    }
  }
  if (r() % 16 == 0) return json(std::numeric_limits<uint64_t>::max());
  return pick(r, kInts);
}

json other_type(Rng& r) {
  switch (r() % 9) {
    case 0: return "x";
    case 1: return json::array();
    case 2: return json::object();
    case 3: return true;
    case 4: return nullptr;
    case 5: return pick(r, kFloats);
    case 6: return json::array({int64_t(1) << 62, int64_t(1) << 62});
    case 7: return json::array({0, 0});
    default: return json::array({-1, 2, 3, 4, 5});
  }
}

json interesting_value(Rng& r, const json& old) {
  if (r() % 4 == 0) return other_type(r);
  if (old.is_number_float()) {
    const double o = old.get<double>();
    switch (r() % 4) {
      case 0: return -o;
      case 1: return o * 1e6;
      case 2: return o * 1e-6;
      default: return pick(r, kFloats);
    }
  }
  if (old.is_string() && r() % 2) return r() % 2 ? json(pick(r, kDtypes)) : json(pick(r, kOps));
  if (old.is_array() && !old.empty()) {
    json a = old;
    a[r() % a.size()] = interesting_value(r, a[r() % a.size()]);
    return a;
  }
  return interesting_int(r, old);
}

// Every JSON node under `j`, so a mutation can land anywhere in the graph.
void collect(json& j, std::vector<json*>& out) {
  out.push_back(&j);
  if (j.is_array() || j.is_object())
    for (json& c : j) collect(c, out);
}

json* random_node(Rng& r, json& g, const char* section) {
  if (!g.contains(section) || !g[section].is_array() || g[section].empty()) return nullptr;
  json& n = g[section][r() % g[section].size()];
  return n.is_object() ? &n : nullptr;
}

// Cuts the graph after node k: its first output becomes the graph output, values nothing reads
// any more are dropped and indices renumbered, and the data section keeps only the remaining
// constants. Turns the large seed models into small programs that run fast.
bool truncate(Rng& r, json& g, std::vector<uint8_t>& data) {
  if (!g["nodes"].is_array() || !g["values"].is_array() || g["nodes"].size() < 2) return false;
  const size_t keep = 1 + r() % (g["nodes"].size() - 1);
  json nodes = json::array();
  for (size_t i = 0; i < keep; ++i) nodes.push_back(g["nodes"][i]);
  const json& last = nodes.back();
  if (!last.contains("outputs") || !last["outputs"].is_array() || last["outputs"].empty()) return false;
  std::vector<int64_t> used;
  auto use = [&](const json& idx) {
    if (idx.is_number_integer()) used.push_back(idx.get<int64_t>());
  };
  for (const json& n : nodes)
    for (const char* k : {"inputs", "outputs"})
      if (n.contains(k) && n[k].is_array())
        for (const json& i : n[k]) use(i);
  if (g["inputs"].is_array())
    for (const json& i : g["inputs"]) use(i);
  const size_t nv = g["values"].size();
  std::vector<int64_t> remap(nv, -1);
  json values = json::array();
  std::vector<uint8_t> newdata;
  for (int64_t u : used)
    if (u >= 0 && size_t(u) < nv) remap[size_t(u)] = 0;
  for (size_t v = 0; v < nv; ++v) {
    if (remap[v] < 0) continue;
    remap[v] = int64_t(values.size());
    json val = g["values"][v];
    if (val.is_object() && val.contains("data") && val["data"].is_object()) {
      const json d = val["data"];  // a copy: nlohmann's const operator[] asserts on a missing key
      if (d.value("offset", json()).is_number_unsigned() && d.value("nbytes", json()).is_number_unsigned()) {
        const uint64_t off = d["offset"].get<uint64_t>(), nb = d["nbytes"].get<uint64_t>();
        if (off <= data.size() && nb <= data.size() - off) {
          newdata.resize((newdata.size() + 63) / 64 * 64, 0);
          val["data"]["offset"] = newdata.size();
          newdata.insert(newdata.end(), data.begin() + long(off), data.begin() + long(off + nb));
        }
      }
    }
    values.push_back(std::move(val));
  }
  auto renumber = [&](json& idx) {
    if (idx.is_number_integer()) {
      const int64_t i = idx.get<int64_t>();
      if (i >= 0 && size_t(i) < nv) idx = remap[size_t(i)];
    }
  };
  for (json& n : nodes)
    for (const char* k : {"inputs", "outputs"})
      if (n.contains(k) && n[k].is_array())
        for (json& i : n[k]) renumber(i);
  json outputs = json::array({last["outputs"][0]});
  renumber(outputs[0]);
  if (g["inputs"].is_array())
    for (json& i : g["inputs"]) renumber(i);
  g["nodes"] = std::move(nodes);
  g["values"] = std::move(values);
  g["outputs"] = std::move(outputs);
  data = std::move(newdata);
  return true;
}

// One structural edit of the graph. Returns false when it found nothing to edit.
bool mutate_once(Rng& r, json& g, std::vector<uint8_t>& data) {
  switch (r() % 12) {
    case 0: case 1: case 2: {  // an attribute of a node: huge, negative, zero, another type
      json* n = random_node(r, g, "nodes");
      if (!n || !n->contains("attrs") || !(*n)["attrs"].is_object()) return false;
      json& a = (*n)["attrs"];
      if (a.empty() || r() % 5 == 0) {
        a[pick(r, kKeys)] = interesting_value(r, json(int64_t(1)));
        return true;
      }
      auto it = a.begin();
      std::advance(it, long(r() % a.size()));
      if (r() % 8 == 0) {
        a.erase(it);
      } else {
        *it = interesting_value(r, *it);
      }
      return true;
    }
    case 3: {  // the op of a node
      json* n = random_node(r, g, "nodes");
      if (!n) return false;
      (*n)["op"] = pick(r, kOps);
      return true;
    }
    case 4: {  // a node's input or output index
      json* n = random_node(r, g, "nodes");
      const char* k = r() % 4 ? "inputs" : "outputs";
      if (!n || !n->contains(k) || !(*n)[k].is_array()) return false;
      json& ix = (*n)[k];
      const int64_t nv = g["values"].is_array() ? std::max<int64_t>(int64_t(g["values"].size()), 1) : 1;
      const int64_t v = r() % 3 ? int64_t(r() % uint64_t(nv)) : interesting_int(r, 0).get<int64_t>();
      if (ix.empty() || r() % 6 == 0) ix.push_back(v);
      else if (r() % 6 == 0) ix.erase(ix.begin() + long(r() % ix.size()));
      else ix[r() % ix.size()] = r() % 5 ? json(v) : json(-1);
      return true;
    }
    case 5: {  // a value's shape (activations and constants alike)
      json* v = random_node(r, g, "values");
      if (!v || !v->contains("shape") || !(*v)["shape"].is_array()) return false;
      json& s = (*v)["shape"];
      if (s.empty() || r() % 5 == 0) s.push_back(interesting_int(r, 1));
      else if (r() % 5 == 0) s.erase(s.begin() + long(r() % s.size()));
      else s[r() % s.size()] = interesting_int(r, s[r() % s.size()]);
      return true;
    }
    case 6: {  // a value's dtype
      json* v = random_node(r, g, "values");
      if (!v) return false;
      (*v)["dtype"] = pick(r, kDtypes);
      return true;
    }
    case 7: {  // quantization parameters, or a constant's data range
      json* v = random_node(r, g, "values");
      if (!v) return false;
      const char* k = v->contains("quant") && (r() % 3 || !v->contains("data")) ? "quant" : "data";
      if (!v->contains(k) || !(*v)[k].is_object() || (*v)[k].empty()) return false;
      json& q = (*v)[k];
      auto it = q.begin();
      std::advance(it, long(r() % q.size()));
      *it = interesting_value(r, *it);
      return true;
    }
    case 8: {  // preprocessing metadata: mean, std, input
      if (!g["meta"].is_object()) g["meta"] = json::object();
      const char* k = r() % 3 == 0 ? "mean" : r() % 2 ? "std" : "input";
      json& m = g["meta"][k];
      m = r() % 3 ? json::array({pick(r, kFloats)}) : interesting_value(r, m);
      return true;
    }
    case 9: return truncate(r, g, data);
    case 10: {  // copy one node's attributes onto another (a conv's onto a pool, ...)
      json* a = random_node(r, g, "nodes");
      json* b = random_node(r, g, "nodes");
      if (!a || !b || a == b) return false;
      (*b)["attrs"] = (*a).value("attrs", json::object());
      return true;
    }
    default: {  // anything anywhere, graph inputs/outputs included
      std::vector<json*> all;
      collect(g, all);
      json* j = all[r() % all.size()];
      if (j == &g) return false;
      *j = interesting_value(r, *j);
      return true;
    }
  }
}

// Runs the program once on a batch-1 input of each declared shape and dtype.
struct Input {
  finch::Shape shape;
  finch::DType dtype;
};

void run_once(finch::runtime::Program& p, const std::vector<Input>& declared, uint32_t seed) {
  std::vector<finch::Tensor> inputs;
  for (const Input& in : declared) {
    finch::Shape s = in.shape;
    if (!s.empty()) s[0] = 1;
    int64_t n = 1;
    for (int64_t d : s) {
      // The harness itself must not be what asks for gigabytes: a declared input too large
      // to build is left to the loader's own checks, which have already passed by now.
      if (d < 0 || d > (int64_t(1) << 22) || (n *= std::max<int64_t>(d, 1)) > (int64_t(1) << 22)) return;
    }
    finch::Tensor t = finch::zeros(s, in.dtype);
    uint8_t* b = static_cast<uint8_t*>(t.raw_data());
    uint32_t x = seed | 1;
    for (size_t k = 0; k < t.nbytes(); ++k) {
      x = x * 1664525u + 1013904223u;
      // Float inputs get small finite values (bytes 0x3c../0xbc.. in the top byte); integer
      // inputs any byte.
      b[k] = uint8_t(x >> 24);
    }
    if (t.dtype() == finch::DType::f32) {
      float* f = static_cast<float*>(t.raw_data());
      for (int64_t k = 0; k < t.numel(); ++k) f[k] = float(int(b[4 * k] % 64) - 32) / 16.0f;
    }
    inputs.push_back(std::move(t));
  }
  std::vector<finch::Tensor> out = p.run(inputs);
  volatile float sink = 0;
  for (const finch::Tensor& t : out)
    if (t.defined() && t.dtype() == finch::DType::f32 && t.numel() > 0) sink = sink + t.data<float>()[0];
}

}  // namespace

extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
  Rng r(seed);
  std::optional<Parts> p = split(data, size);
  std::optional<json> g;
  if (p) {
    g = json::parse(p->json, nullptr, /*allow_exceptions=*/false);
    if (!g->is_object()) g.reset();  // discarded (not JSON) or JSON but not a graph object
  }
  // Now and then (and always when the input is no longer a program), plain byte mutations.
  if (!p || !g || r() % 16 == 0) {
    if (p && r() % 2) {  // on the JSON text only, then a correct container around it
      std::string& s = p->json;
      const size_t cap = s.size() + 64;
      s.resize(cap);
      s.resize(LLVMFuzzerMutate(reinterpret_cast<uint8_t*>(s.data()), cap - 64, cap));
      std::vector<uint8_t> f = join(*p);
      if (f.size() <= max_size) {
        std::memcpy(data, f.data(), f.size());
        return f.size();
      }
    }
    return LLVMFuzzerMutate(data, size, max_size);
  }
  // Large programs (the seed models) load and run at a few per second under the sanitizers:
  // cut them down more often than the other edits would.
  // The edits index into whatever the earlier ones left (a "nodes" that is now a string, ...):
  // nlohmann throws on such a mismatch, and that edit is simply dropped.
  auto edit = [&](auto&& f) {
    try {
      return f();
    } catch (const json::exception&) {
      return false;
    }
  };
  if (p->data.size() > 16384 && r() % 2) edit([&] { return truncate(r, *g, p->data); });
  const int edits = 1 + int(r() % 3);
  for (int i = 0, tries = 0; i < edits && tries < 20; ++tries)
    if (edit([&] { return mutate_once(r, *g, p->data); })) ++i;
  // Invalid UTF-8 can only come from the byte mutations; replace it rather than throw.
  p->json = g->dump(-1, ' ', false, json::error_handler_t::replace);
  std::vector<uint8_t> f = join(*p);
  if (f.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
  std::memcpy(data, f.data(), f.size());
  return f.size();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    finch::runtime::Graph g = finch::runtime::parse_program(data, size, "fuzz.finch");
    std::vector<Input> declared;  // the Program takes the graph
    for (int32_t i : g.inputs) declared.push_back({g.values[size_t(i)].shape, g.values[size_t(i)].dtype});
    finch::runtime::Program p(std::move(g), "fuzz.finch");
    run_once(p, declared, uint32_t(size));
  } catch (const finch::Error&) {
    // A clear sentence is the correct answer to a bad program. Anything else escapes and
    // libFuzzer reports it (a bad_alloc, a json exception, an out_of_range, ...).
  }
  return 0;
}
