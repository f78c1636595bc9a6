// The .finch rules shared by the reader and the writer (program_file_rules.h).
#include "runtime/program_file_rules.h"


#include <zlib.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <string_view>
#include <tuple>
#include <unordered_map>

#include "framework/atomic_file.h"
#include "framework/error.h"

namespace finch::runtime::detail {

uint64_t align_up(uint64_t x) { return (x + kAlign - 1) / kAlign * kAlign; }

uint32_t crc32_of(const uint8_t* p, size_t n) { return uint32_t(crc32_z(0, p, n)); }

uint32_t read_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
uint64_t read_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}

// A JSON value for an error message, cut short so a hostile file cannot flood the terminal.
std::string brief(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// Raw bytes for an error message: printable ASCII as is, the rest as \xNN.
std::string printable(const uint8_t* p, size_t n) {
  static const char* hex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '"' && p[i] != '\\') s += char(p[i]);
    else s += std::string("\\x") + hex[p[i] >> 4] + hex[p[i] & 15];
  }
  return s;
}

// A string from the file, cut short, non-printable bytes escaped.
std::string printable(const std::string& s) {
  return printable(reinterpret_cast<const uint8_t*>(s.data()), std::min<size_t>(s.size(), 60));
}

std::string value_desc(const Graph& g, int32_t i) {
  return "value " + std::to_string(i) + " (\"" + g.values[size_t(i)].name + "\")";
}
std::string node_desc(const Graph& g, size_t j) {
  const Node& n = g.nodes[j];
  return "node " + std::to_string(j) + " (" + n.op + " \"" + n.name + "\")";
}

// --- rules shared by the reader and the writer -------------------------------------------

// numel * element size must stay below 2^63 (checked by division, so the check cannot
// overflow); returns the byte count.
uint64_t checked_nbytes(const Shape& shape, DType dt, const std::string& where, const Who& who) {
  uint64_t n = 1;
  bool overflow = false;
  for (int64_t d : shape) {
    if (d < 0) who.fail(where, " has shape ", shape_str(shape), "; expected non-negative dims");
    if (d != 0 && n > uint64_t(kInt64Max) / uint64_t(d)) overflow = true;
    else n *= uint64_t(d);
  }
  if (std::find(shape.begin(), shape.end(), 0) != shape.end()) return 0;
  const uint64_t es = dtype_size(dt);
  if (overflow || n > uint64_t(kInt64Max) / es)
    who.fail(where, " has shape ", shape_str(shape), " of ", dtype_name(dt),
             ", which needs more than 2^63 bytes; expected a realistic size");
  return n * es;
}

void check_quant(const QuantInfo& q, const Shape& shape, const std::string& where, const Who& who) {
  const size_t n = q.scale.size();
  if (n == 0) who.fail(where, " quant.scale is empty; expected one scale per tensor or per channel");
  if (q.zero_point.size() != n)
    who.fail(where, " quant has ", n, " scales but ", q.zero_point.size(),
             " zero points; expected the same number");
  if (q.axis == -1) {
    if (n != 1)
      who.fail(where, " quant has axis -1 (per tensor) and ", n, " scales; expected exactly 1");
  } else {
    if (q.axis < 0 || q.axis >= int64_t(shape.size()))
      who.fail(where, " quant.axis is ", q.axis, "; expected -1 or a dim of shape ",
               shape_str(shape));
    if (int64_t(n) != shape[size_t(q.axis)])
      who.fail(where, " quant has ", n, " scales along axis ", q.axis, " of shape ",
               shape_str(shape), "; expected ", shape[size_t(q.axis)], " (one per channel)");
  }
  for (size_t i = 0; i < n; ++i)
    if (!std::isfinite(q.scale[i]) || !(q.scale[i] > 0))
      who.fail(where, " quant.scale[", i, "] is ", q.scale[i], "; expected a finite positive number");
  if (q.qmin > q.qmax)
    who.fail(where, " quant has qmin ", q.qmin, " > qmax ", q.qmax, "; expected qmin <= qmax");
}

// The graph's structure: unique names, indices in range, every node reading only values that
// exist by then (graph inputs, constants, outputs of earlier nodes), each value produced once.
void check_structure(const Graph& g, const Who& who) {
  const int32_t n = int32_t(g.values.size());
  std::unordered_map<std::string_view, int32_t> names;
  for (int32_t i = 0; i < n; ++i) {
    const std::string& name = g.values[size_t(i)].name;
    if (name.empty()) who.fail("value ", i, " has an empty name; expected a unique non-empty name");
    auto [it, fresh] = names.emplace(name, i);
    if (!fresh)
      who.fail("values ", it->second, " and ", i, " are both named \"", name,
               "\"; expected unique value names");
  }
  auto in_range = [&](int32_t idx, const std::string& where) {
    if (idx < 0 || idx >= n)
      who.fail(where, " is value index ", idx, "; expected an index in [0, ", n, ")");
  };
  std::vector<char> available(size_t(n), 0);
  std::vector<int32_t> producer(size_t(n), -1);
  for (int32_t i = 0; i < n; ++i) available[size_t(i)] = g.values[size_t(i)].is_constant();
  for (size_t k = 0; k < g.inputs.size(); ++k) {
    const int32_t v = g.inputs[k];
    in_range(v, "graph input " + std::to_string(k));
    if (g.values[size_t(v)].is_constant())
      who.fail("graph input ", k, " is ", value_desc(g, v),
               ", a constant; expected an activation fed by the caller");
    if (available[size_t(v)])
      who.fail("graph input ", k, " is ", value_desc(g, v), ", listed twice; expected distinct inputs");
    available[size_t(v)] = 1;
  }
  for (size_t j = 0; j < g.nodes.size(); ++j) {
    const Node& node = g.nodes[j];
    if (node.op.empty()) who.fail("node ", j, " has an empty op; expected an op name (ops.md)");
    if (!node.attrs.is_object())
      who.fail(node_desc(g, j), " has attrs ", brief(node.attrs), "; expected a JSON object");
    for (size_t k = 0; k < node.inputs.size(); ++k) {
      const int32_t v = node.inputs[k];
      if (v == -1) continue;  // an absent optional input
      if (v < -1 || v >= n)
        who.fail(node_desc(g, j), " input ", k, " is value index ", v,
                 "; expected -1 (absent) or an index in [0, ", n, ")");
      if (!available[size_t(v)])
        who.fail(node_desc(g, j), " reads ", value_desc(g, v),
                 " before any node produces it; expected graph inputs, constants or outputs of "
                 "earlier nodes");
    }
    for (size_t k = 0; k < node.outputs.size(); ++k) {
      const int32_t v = node.outputs[k];
      in_range(v, node_desc(g, j) + " output " + std::to_string(k));
      const Value& val = g.values[size_t(v)];
      if (val.is_constant())
        who.fail(node_desc(g, j), " writes ", value_desc(g, v),
                 ", a constant; expected an activation");
      if (producer[size_t(v)] >= 0)
        who.fail(value_desc(g, v), " is produced by ", node_desc(g, size_t(producer[size_t(v)])),
                 " and by ", node_desc(g, j), "; expected exactly one producer");
      if (available[size_t(v)])
        who.fail(node_desc(g, j), " writes ", value_desc(g, v),
                 ", a graph input; expected a fresh activation");
      producer[size_t(v)] = int32_t(j);
    }
    for (int32_t v : node.outputs) available[size_t(v)] = 1;
  }
  for (size_t k = 0; k < g.outputs.size(); ++k) {
    const int32_t v = g.outputs[k];
    in_range(v, "graph output " + std::to_string(k));
    if (!available[size_t(v)])
      who.fail("graph output ", k, " is ", value_desc(g, v),
               ", which no node produces; expected a produced value, a graph input or a constant");
  }
}

}  // namespace finch::runtime::detail
