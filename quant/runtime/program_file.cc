// .finch program writer and validating reader (the format is described in program_file.h).
#include "quant/runtime/program_file.h"

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

namespace finch::runtime {

// Constant bytes and header integers are copied verbatim between memory and file.
static_assert(std::endian::native == std::endian::little,
              ".finch IO assumes a little-endian host (x86-64, AArch64, ARMv7 are)");

namespace {

using json = nlohmann::json;
using ojson = nlohmann::ordered_json;  // the writer keeps the documented key order

constexpr char kMagic[8] = {'F', 'I', 'N', 'C', 'H', 'P', 'R', 'G'};
constexpr size_t kHeaderBytes = 24;        // magic, version, flags, JSON length
constexpr size_t kZipHeaderBytes = 32;     // the same and the uncompressed JSON length
constexpr uint32_t kKnownFlags = kFlagZlibJson;
// The uncompressed JSON length U of a compressed file is checked against two bounds before
// anything is allocated, so a 1 KB file cannot make the reader allocate gigabytes:
//  - deflate expands at most 1032:1 (a 258-byte match costs at least 2 bits), so a U above
//    kMaxInflateRatio * J (+ a little for tiny streams) cannot be true of any zlib stream;
//  - kMaxJsonBytes: real descriptions are kilobytes (per-channel int8 ResNet-20: 38 KB;
//    BERT-base would be about 2 MB), and the parsed nlohmann document takes several times its
//    text's size, so 16 MiB of text keeps a hostile but well-formed stream under ~1 GB.
constexpr uint64_t kMaxInflateRatio = 1032;
constexpr uint64_t kMaxJsonBytes = uint64_t(16) << 20;
constexpr size_t kCrcBytes = 4;
constexpr uint64_t kAlign = 64;
constexpr const char* kFormatName = "finch-program";
// meta and attrs may nest, but nothing legitimate comes close; bounding the depth keeps the
// recursive copy and dump of nlohmann values from exhausting the stack on hostile input.
constexpr int kMaxJsonDepth = 64;
constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
constexpr const char* kDtypeList = "F32, F64, F16, BF16, I8, U8, I16, I32, I64 or BOOL";
constexpr DType kAllDtypes[] = {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8,
                                DType::u8,  DType::i16, DType::i32, DType::i64,  DType::b8};

// Every error of one call starts with the same words naming the source: "program file 'x': "
// for the reader, "write_program: " for the writer.
struct Who {
  std::string prefix;
  template <typename... Args>
  [[noreturn]] void fail(const Args&... args) const {
    finch::fail(prefix, args...);
  }
};

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

// --- writer -------------------------------------------------------------------------------

void append_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(uint8_t(v >> (8 * i)));
}
void append_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(uint8_t(v >> (8 * i)));
}

// A float scale as the JSON number with the fewest digits that reads back as the same float:
// the shortest float decimal (to_chars) turned into the double nearest to it, which nlohmann
// prints again as that short decimal. Reading goes decimal -> double -> float, two roundings,
// so the short form is kept only when it survives them bit for bit; otherwise the float's exact
// double value is written (17 digits, always exact).
double short_float(float f) {
  char buf[32];
  const auto printed = std::to_chars(buf, buf + sizeof buf, f);
  double d = 0;
  const auto parsed = std::from_chars(buf, printed.ptr, d);
  if (printed.ec == std::errc() && parsed.ec == std::errc() &&
      std::bit_cast<uint32_t>(float(d)) == std::bit_cast<uint32_t>(f))
    return d;
  return double(f);
}

ojson short_floats(const std::vector<float>& v) {
  ojson out = ojson::array();
  for (float f : v) out.push_back(short_float(f));
  return out;
}

// --- reader: typed access to JSON fields, each failure one sentence ------------------------

const json& field(const json& obj, const char* key, const std::string& where, const Who& who) {
  auto it = obj.find(key);
  if (it == obj.end()) who.fail(where, " has no \"", key, "\" field; expected one");
  return *it;
}

int64_t get_int(const json& v, const std::string& where, const Who& who) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(kInt64Max)) who.fail(where, " is ", u, "; expected an integer below 2^63");
    return int64_t(u);
  }
  if (v.is_number_integer()) return v.get<int64_t>();
  who.fail(where, " is ", brief(v), " (a JSON ", v.type_name(), "); expected an integer");
}

int64_t get_int_in(const json& v, int64_t lo, int64_t hi, const std::string& where, const Who& who) {
  const int64_t x = get_int(v, where, who);
  if (x < lo || x > hi) who.fail(where, " is ", x, "; expected an integer in [", lo, ", ", hi, "]");
  return x;
}

const json& get_array(const json& v, const std::string& where, const Who& who) {
  if (!v.is_array()) who.fail(where, " is ", brief(v), " (a JSON ", v.type_name(), "); expected an array");
  return v;
}

const std::string& get_string(const json& v, const std::string& where, const Who& who) {
  if (!v.is_string()) who.fail(where, " is ", brief(v), " (a JSON ", v.type_name(), "); expected a string");
  return v.get_ref<const std::string&>();
}

void check_object(const json& v, const std::string& where, const Who& who) {
  if (!v.is_object()) who.fail(where, " is ", brief(v), " (a JSON ", v.type_name(), "); expected an object");
}

// Value indices: JSON integers in [lo, n).
std::vector<int32_t> get_indices(const json& v, int32_t lo, int32_t n, const std::string& where, const Who& who) {
  get_array(v, where, who);
  std::vector<int32_t> out;
  out.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string w = where + "[" + std::to_string(i) + "]";
    const int64_t x = get_int(v[i], w, who);
    if (x < lo || x >= n)
      who.fail(w, " is value index ", x, "; expected ", lo == -1 ? "-1 (absent) or " : "",
               "an index in [0, ", n, ")");
    out.push_back(int32_t(x));
  }
  return out;
}

DType get_dtype(const json& v, const std::string& where, const Who& who) {
  const std::string& s = get_string(v, where, who);
  for (DType t : kAllDtypes)
    if (s == dtype_name(t)) return t;
  who.fail(where, " is \"", printable(s),
           "\"; expected ", kDtypeList);
}

QuantInfo parse_quant(const json& q, const std::string& where, const Who& who) {
  check_object(q, where, who);
  QuantInfo out;
  const json& scale = get_array(field(q, "scale", where, who), where + ".scale", who);
  for (size_t i = 0; i < scale.size(); ++i) {
    const std::string w = where + ".scale[" + std::to_string(i) + "]";
    if (!scale[i].is_number()) who.fail(w, " is ", brief(scale[i]), "; expected a number");
    // Converting a double beyond float's range to float is undefined behaviour, so those are
    // rejected here; the rest (zero, negative, underflow to 0) is check_quant's.
    const double d = scale[i].get<double>();
    if (!(std::fabs(d) <= double(std::numeric_limits<float>::max())))
      who.fail(w, " is ", d, "; expected a finite positive number in float range");
    out.scale.push_back(float(d));
  }
  const json& zp = get_array(field(q, "zero_point", where, who), where + ".zero_point", who);
  for (size_t i = 0; i < zp.size(); ++i)
    out.zero_point.push_back(int32_t(get_int_in(zp[i], std::numeric_limits<int32_t>::min(),
                                                std::numeric_limits<int32_t>::max(),
                                                where + ".zero_point[" + std::to_string(i) + "]", who)));
  out.axis = get_int(field(q, "axis", where, who), where + ".axis", who);
  out.qmin = get_int(field(q, "qmin", where, who), where + ".qmin", who);
  out.qmax = get_int(field(q, "qmax", where, who), where + ".qmax", who);
  return out;
}

// Where a constant's bytes lie in the data section.
struct Extent {
  uint64_t offset = 0, nbytes = 0;
  int32_t value = -1;
};

// One entry of "values" without its data; `extent` is filled for constants.
Value parse_value(const json& v, int32_t i, uint64_t data_size, Extent* extent, bool* constant,
                  const Who& who) {
  std::string where = "values[" + std::to_string(i) + "]";
  check_object(v, where, who);
  Value out;
  out.name = get_string(field(v, "name", where, who), where + ".name", who);
  if (out.name.empty()) who.fail(where, ".name is empty; expected a unique non-empty name");
  where += " (\"" + printable(out.name) + "\")";
  const json& shape = get_array(field(v, "shape", where, who), where + ".shape", who);
  for (size_t d = 0; d < shape.size(); ++d)
    out.shape.push_back(get_int_in(shape[d], 0, kInt64Max, where + ".shape[" + std::to_string(d) + "]", who));
  out.dtype = get_dtype(field(v, "dtype", where, who), where + ".dtype", who);
  const uint64_t nbytes = checked_nbytes(out.shape, out.dtype, where, who);
  if (auto q = v.find("quant"); q != v.end()) {
    out.quant = parse_quant(*q, where + ".quant", who);
    check_quant(*out.quant, out.shape, where, who);
  }
  *constant = false;
  if (auto d = v.find("data"); d != v.end()) {
    const std::string w = where + ".data";
    check_object(*d, w, who);
    const int64_t off = get_int_in(field(*d, "offset", w, who), 0, kInt64Max, w + ".offset", who);
    const int64_t nb = get_int_in(field(*d, "nbytes", w, who), 0, kInt64Max, w + ".nbytes", who);
    if (uint64_t(off) % kAlign != 0)
      who.fail(w, ".offset is ", off, "; expected a multiple of ", kAlign);
    if (uint64_t(nb) != nbytes)
      who.fail(w, ".nbytes is ", nb, "; expected ", nbytes, " (shape ", shape_str(out.shape), " of ",
               dtype_name(out.dtype), ")");
    if (uint64_t(off) > data_size || uint64_t(nb) > data_size - uint64_t(off))
      who.fail(w, " is bytes [", off, ", ", uint64_t(off) + uint64_t(nb), ") of the data section; expected a range within its ",
               data_size, " bytes");
    *extent = Extent{uint64_t(off), uint64_t(nb), i};
    *constant = true;
  }
  return out;
}

Node parse_node(const json& v, size_t j, int32_t nvalues, const Who& who) {
  const std::string where = "nodes[" + std::to_string(j) + "]";
  check_object(v, where, who);
  Node out;
  out.op = get_string(field(v, "op", where, who), where + ".op", who);
  if (out.op.empty()) who.fail(where, ".op is empty; expected an op name (ops.md)");
  out.name = get_string(field(v, "name", where, who), where + ".name", who);
  out.inputs = get_indices(field(v, "inputs", where, who), -1, nvalues, where + ".inputs", who);
  out.outputs = get_indices(field(v, "outputs", where, who), 0, nvalues, where + ".outputs", who);
  const json& attrs = field(v, "attrs", where, who);
  check_object(attrs, where + ".attrs", who);
  out.attrs = attrs;
  return out;
}

// Parses the JSON text, rejecting duplicate keys (nlohmann would silently keep the last) and
// nesting deeper than kMaxJsonDepth.
json parse_json_text(const uint8_t* text, size_t n, const Who& who) {
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  bool too_deep = false;
  auto on_event = [&](int depth, json::parse_event_t ev, json& parsed) {
    using E = json::parse_event_t;
    if (ev == E::object_start || ev == E::array_start) {
      if (depth >= kMaxJsonDepth) too_deep = true;
      if (too_deep) return false;  // discarded: nothing deeper is built
      if (ev == E::object_start) open_objects.emplace_back();
    } else if (ev == E::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (ev == E::key && !too_deep && !open_objects.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  json doc;
  try {
    doc = json::parse(text, text + n, on_event);
  } catch (const json::exception& ex) {
    who.fail("expected the JSON description to be valid JSON, found a parse error: ", ex.what());
  }
  if (too_deep) who.fail("the JSON description nests deeper than ", kMaxJsonDepth, " levels; expected a shallow document");
  if (!duplicate.empty())
    who.fail("the JSON description has the key \"", duplicate, "\" twice in one object; expected unique keys");
  return doc;
}

}  // namespace

std::vector<uint8_t> serialize_program(const Graph& g) {
  const Who who{"write_program: "};
  if (!g.meta.is_object()) who.fail("meta is ", brief(g.meta), "; expected a JSON object");
  // Every value's shape, quantization and constant data, then the graph's structure: the same
  // rules the reader applies, so whatever is written reads back.
  std::vector<Tensor> data(g.values.size());
  std::vector<uint64_t> offsets(g.values.size(), 0);
  ojson values = ojson::array();
  uint64_t cursor = 0;
  for (size_t i = 0; i < g.values.size(); ++i) {
    const Value& v = g.values[i];
    const std::string where = "value " + std::to_string(i) + " (\"" + v.name + "\")";
    const uint64_t nbytes = checked_nbytes(v.shape, v.dtype, where, who);
    ojson jv = {{"name", v.name}, {"shape", v.shape}, {"dtype", dtype_name(v.dtype)}};
    if (v.quant) {
      check_quant(*v.quant, v.shape, where, who);
      jv["quant"] = {{"scale", short_floats(v.quant->scale)},
                     {"zero_point", v.quant->zero_point},
                     {"axis", v.quant->axis},
                     {"qmin", v.quant->qmin},
                     {"qmax", v.quant->qmax}};
    }
    if (v.is_constant()) {
      if (v.data.dtype() != v.dtype || v.data.shape() != v.shape)
        who.fail(where, " is declared ", dtype_name(v.dtype), " ", shape_str(v.shape),
                 " but its data is ", dtype_name(v.data.dtype()), " ", shape_str(v.data.shape()),
                 "; expected them to agree");
      data[i] = v.data.contiguous();
      if (v.dtype == DType::b8) {  // the reader refuses other bytes (UB as a C++ bool)
        const uint8_t* p = static_cast<const uint8_t*>(data[i].raw_data());
        for (size_t k = 0; k < data[i].nbytes(); ++k)
          if (p[k] > 1) who.fail(where, " is BOOL but holds the byte ", int(p[k]), "; expected 0 or 1");
      }
      cursor = align_up(cursor);
      offsets[i] = cursor;
      jv["data"] = {{"offset", cursor}, {"nbytes", nbytes}};
      cursor += nbytes;
    }
    values.push_back(std::move(jv));
  }
  check_structure(g, who);

  ojson nodes = ojson::array();
  for (const Node& n : g.nodes)
    nodes.push_back({{"op", n.op}, {"name", n.name}, {"inputs", n.inputs}, {"outputs", n.outputs},
                     {"attrs", ojson(n.attrs)}});
  ojson doc = {{"format", kFormatName},   {"version", kProgramVersion}, {"meta", ojson(g.meta)},
               {"inputs", g.inputs},      {"outputs", g.outputs},       {"values", std::move(values)},
               {"nodes", std::move(nodes)}};
  std::string text;
  try {
    text = doc.dump();
  } catch (const ojson::exception& ex) {  // a name, op or meta string that is not valid UTF-8
    who.fail("a name, op, attribute or meta string is not valid UTF-8 (", ex.what(), ")");
  }

  if (text.size() > kMaxJsonBytes)
    who.fail("the JSON description takes ", text.size(), " bytes; expected at most ", kMaxJsonBytes,
             " (the reader's limit)");
  uLongf zlen = compressBound(uLong(text.size()));
  std::vector<uint8_t> zipped(static_cast<size_t>(zlen));
  const int zrc = compress2(zipped.data(), &zlen, reinterpret_cast<const Bytef*>(text.data()),
                            uLong(text.size()), 9);
  if (zrc != Z_OK) who.fail("compressing the JSON description failed (zlib: ", zError(zrc), ")");
  zipped.resize(size_t(zlen));

  const uint64_t data_start = align_up(kZipHeaderBytes + zipped.size());
  std::vector<uint8_t> out;
  out.reserve(size_t(data_start + cursor + kCrcBytes));
  out.insert(out.end(), kMagic, kMagic + 8);
  append_u32(out, kProgramVersion);
  append_u32(out, kFlagZlibJson);
  append_u64(out, zipped.size());
  append_u64(out, text.size());
  out.insert(out.end(), zipped.begin(), zipped.end());
  out.resize(size_t(data_start + cursor), 0);  // zero padding, then room for the data section
  for (size_t i = 0; i < data.size(); ++i) {
    if (!data[i].defined() || data[i].nbytes() == 0) continue;
    std::memcpy(out.data() + data_start + offsets[i], data[i].raw_data(), data[i].nbytes());
  }
  append_u32(out, crc32_of(out.data(), out.size()));
  return out;
}

void write_program(const Graph& g, const std::string& path) {
  const std::vector<uint8_t> bytes = serialize_program(g);
  write_file_atomically(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

Graph parse_program(const uint8_t* data, size_t size, const std::string& what) {
  const Who who{"program file '" + what + "': "};
  // Minimal header checks: enough to know where the checksum is and that the bytes claim to be
  // a program of a version we can read.
  if (size >= 8 && std::memcmp(data, kMagic, 8) != 0)
    who.fail("expected the magic bytes \"FINCHPRG\", found \"", printable(data, 8),
             "\" (not a finch program)");
  if (size < kHeaderBytes + kCrcBytes)
    who.fail("expected at least ", kHeaderBytes + kCrcBytes, " bytes (header and checksum), found ",
             size, " (truncated file?)");
  const uint32_t version = read_u32(data + 8);
  if (version != kProgramVersion)
    who.fail("format version is ", version, "; this reader supports version ", kProgramVersion,
             version > kProgramVersion ? " (written by a newer finch?)" : "");
  const uint32_t flags = read_u32(data + 12);
  if ((flags & ~kKnownFlags) != 0)
    who.fail("header flags are ", flags, "; expected 0 or ", kFlagZlibJson,
             " (bit 0, zlib-compressed JSON, is the only flag defined in version ", kProgramVersion,
             ")");
  const bool zipped = (flags & kFlagZlibJson) != 0;
  const size_t header_bytes = zipped ? kZipHeaderBytes : kHeaderBytes;
  if (size < header_bytes + kCrcBytes)
    who.fail("expected at least ", header_bytes + kCrcBytes,
             " bytes (header with the compressed JSON's lengths, and checksum), found ", size,
             " (truncated file?)");
  const uint64_t json_len = read_u64(data + 16);
  const uint64_t room = size - header_bytes - kCrcBytes;
  if (json_len > room)
    who.fail("the JSON length field says ", json_len, " bytes, but only ", room,
             " bytes follow the header (truncated file?)");
  const uint64_t text_len = zipped ? read_u64(data + 24) : json_len;
  if (zipped) {
    const uint64_t limit = std::min(kMaxJsonBytes, kMaxInflateRatio * json_len + 64);
    if (text_len > limit)
      who.fail("the header says the ", json_len, " bytes of compressed JSON inflate to ", text_len,
               " bytes; expected at most ", limit, " (zlib expands at most ", kMaxInflateRatio,
               ":1 and a program's JSON stays under ", kMaxJsonBytes, " bytes)");
  }
  const uint32_t stored_crc = read_u32(data + size - kCrcBytes);
  const uint32_t actual_crc = crc32_of(data, size - kCrcBytes);
  if (stored_crc != actual_crc)
    who.fail("checksum mismatch: the file says CRC-32 ", stored_crc, " but its bytes give ", actual_crc,
             "; expected them to agree (corrupt or truncated file)");

  const uint64_t data_start = align_up(header_bytes + json_len);
  if (data_start > size - kCrcBytes)
    who.fail("the data section should start at byte ", data_start, " but the file ends at ",
             size - kCrcBytes, " (before the checksum); truncated file?");
  for (uint64_t i = header_bytes + json_len; i < data_start; ++i)
    if (data[i] != 0)
      who.fail("byte ", i, " of the padding after the JSON is ", int(data[i]), "; expected 0");
  const uint64_t data_size = size - kCrcBytes - data_start;

  const uint8_t* text = data + header_bytes;
  std::vector<uint8_t> inflated;
  if (zipped) {
    inflated.resize(size_t(text_len));
    uLongf out_len = uLongf(text_len);
    uLong in_len = uLong(json_len);
    // uncompress2 reports how much input it used, so bytes after the stream are caught too.
    const int zrc = uncompress2(inflated.data(), &out_len, text, &in_len);
    if (zrc == Z_BUF_ERROR)  // the output is full but the stream goes on (or is cut short)
      who.fail("the compressed JSON does not end within the ", text_len,
               " bytes the header says; expected a zlib stream of exactly ", text_len, " bytes");
    if (zrc != Z_OK)
      who.fail("the ", json_len, " bytes of compressed JSON do not inflate (zlib: ", zError(zrc),
               "); expected a zlib stream of ", text_len, " bytes of JSON");
    if (out_len != text_len)
      who.fail("the compressed JSON inflates to ", out_len, " bytes; expected ", text_len,
               " as the header says");
    if (in_len != json_len)
      who.fail("the zlib stream ends after ", in_len, " of the ", json_len,
               " bytes of compressed JSON; expected it to fill them");
    text = inflated.data();
  }
  const json doc = parse_json_text(text, size_t(text_len), who);
  check_object(doc, "the JSON description", who);
  const std::string& format = get_string(field(doc, "format", "the JSON description", who), "\"format\"", who);
  if (format != kFormatName) who.fail("\"format\" is \"", printable(format), "\"; expected \"", kFormatName, "\"");
  const int64_t jversion = get_int(field(doc, "version", "the JSON description", who), "\"version\"", who);
  if (jversion != int64_t(version))
    who.fail("the JSON says version ", jversion, " but the header says ", version, "; expected them to agree");

  Graph g;
  const json& meta = field(doc, "meta", "the JSON description", who);
  check_object(meta, "\"meta\"", who);
  g.meta = meta;

  const json& values = get_array(field(doc, "values", "the JSON description", who), "\"values\"", who);
  if (values.size() > size_t(std::numeric_limits<int32_t>::max()))
    who.fail("\"values\" has ", values.size(), " entries; expected fewer than 2^31");
  const int32_t nvalues = int32_t(values.size());
  std::vector<Extent> extents;
  g.values.reserve(values.size());
  for (int32_t i = 0; i < nvalues; ++i) {
    Extent e;
    bool constant = false;
    g.values.push_back(parse_value(values[size_t(i)], i, data_size, &e, &constant, who));
    if (constant) extents.push_back(e);
  }
  // Overlapping constants would alias one another's bytes; checked before allocating, so the
  // total allocated is at most the data section's size.
  std::vector<Extent> sorted;
  for (const Extent& e : extents)
    if (e.nbytes > 0) sorted.push_back(e);
  std::sort(sorted.begin(), sorted.end(), [](const Extent& a, const Extent& b) {
    return std::tie(a.offset, a.value) < std::tie(b.offset, b.value);
  });
  for (size_t k = 1; k < sorted.size(); ++k) {
    const Extent& a = sorted[k - 1];
    const Extent& b = sorted[k];
    if (a.offset + a.nbytes > b.offset)
      who.fail(value_desc(g, b.value), " at data bytes [", b.offset, ", ", b.offset + b.nbytes,
               ") overlaps ", value_desc(g, a.value), " at [", a.offset, ", ", a.offset + a.nbytes,
               "); expected disjoint constants");
  }
  for (const Extent& e : extents) {
    Value& v = g.values[size_t(e.value)];
    Tensor t = empty(v.shape, v.dtype);
    if (e.nbytes > 0) std::memcpy(t.raw_data(), data + data_start + e.offset, size_t(e.nbytes));
    if (v.dtype == DType::b8) {
      // A byte other than 0/1 read as C++ bool is undefined behaviour.
      const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
      for (uint64_t i = 0; i < e.nbytes; ++i)
        if (p[i] > 1)
          who.fail(value_desc(g, e.value), " is BOOL but holds the byte ", int(p[i]), " at element ",
                   i, "; expected 0 or 1");
    }
    v.data = std::move(t);
  }

  g.inputs = get_indices(field(doc, "inputs", "the JSON description", who), 0, nvalues, "\"inputs\"", who);
  g.outputs = get_indices(field(doc, "outputs", "the JSON description", who), 0, nvalues, "\"outputs\"", who);
  const json& nodes = get_array(field(doc, "nodes", "the JSON description", who), "\"nodes\"", who);
  g.nodes.reserve(nodes.size());
  for (size_t j = 0; j < nodes.size(); ++j) g.nodes.push_back(parse_node(nodes[j], j, nvalues, who));
  check_structure(g, who);
  return g;
}

Graph read_program(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail("cannot read program file '", path, "': expected a file, found a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read program file '", path, "': ", std::strerror(errno));
  const uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read program file '", path, "': ", ec.message());
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  if (!f.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(bytes.size())))
    fail("cannot read program file '", path, "': reading its ", size, " bytes failed");
  return parse_program(bytes.data(), bytes.size(), path);
}

}  // namespace finch::runtime
