// .finch program reader: checks every field before trusting it (program_file.h lists the rules).
#include "runtime/program_file.h"


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
#include "runtime/program_file_rules.h"

namespace finch::runtime {

using namespace detail;

namespace {

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

// What the fixed-size header says. Checked against the file's size only, so it needs just the
// first kZipHeaderBytes bytes (or the whole file when it is shorter).
struct Header {
  uint32_t version = 0;
  bool zipped = false;
  size_t header_bytes = 0;
  uint64_t json_len = 0;  // as stored
  uint64_t text_len = 0;  // once inflated
};

Header parse_header(const uint8_t* data, uint64_t size, const Who& who) {
  // Minimal header checks: enough to know where the checksum is and that the bytes claim to be
  // a program of a version we can read.
  if (size >= 8 && std::memcmp(data, kMagic, 8) != 0)
    who.fail("expected the magic bytes \"FINCHPRG\", found \"", printable(data, 8),
             "\" (not a finch program)");
  if (size < kHeaderBytes + kCrcBytes)
    who.fail("expected at least ", kHeaderBytes + kCrcBytes, " bytes (header and checksum), found ",
             size, " (truncated file?)");
  Header h;
  h.version = read_u32(data + 8);
  if (h.version != kProgramVersion)
    who.fail("format version is ", h.version, "; this reader supports version ", kProgramVersion,
             h.version > kProgramVersion ? " (written by a newer finch?)" : "");
  const uint32_t flags = read_u32(data + 12);
  if ((flags & ~kKnownFlags) != 0)
    who.fail("header flags are ", flags, "; expected 0 or ", kFlagZlibJson,
             " (bit 0, zlib-compressed JSON, is the only flag defined in version ", kProgramVersion,
             ")");
  h.zipped = (flags & kFlagZlibJson) != 0;
  h.header_bytes = h.zipped ? kZipHeaderBytes : kHeaderBytes;
  if (size < h.header_bytes + kCrcBytes)
    who.fail("expected at least ", h.header_bytes + kCrcBytes,
             " bytes (header with the compressed JSON's lengths, and checksum), found ", size,
             " (truncated file?)");
  h.json_len = read_u64(data + 16);
  const uint64_t room = size - h.header_bytes - kCrcBytes;
  if (h.json_len > room)
    who.fail("the JSON length field says ", h.json_len, " bytes, but only ", room,
             " bytes follow the header (truncated file?)");
  h.text_len = h.zipped ? read_u64(data + 24) : h.json_len;
  if (h.zipped) {
    const uint64_t limit = std::min(kMaxJsonBytes, kMaxInflateRatio * h.json_len + 64);
    if (h.text_len > limit)
      who.fail("the header says the ", h.json_len, " bytes of compressed JSON inflate to ", h.text_len,
               " bytes; expected at most ", limit, " (zlib expands at most ", kMaxInflateRatio,
               ":1 and a program's JSON stays under ", kMaxJsonBytes, " bytes)");
  }
  return h;
}

// The JSON description (inflated when zipped), parsed, with its format and version checked.
// `data` holds at least the header and the JSON section.
json parse_description(const uint8_t* data, const Header& h, const Who& who) {
  const uint8_t* text = data + h.header_bytes;
  std::vector<uint8_t> inflated;
  if (h.zipped) {
    inflated.resize(size_t(h.text_len));
    uLongf out_len = uLongf(h.text_len);
    uLong in_len = uLong(h.json_len);
    // uncompress2 reports how much input it used, so bytes after the stream are caught too.
    const int zrc = uncompress2(inflated.data(), &out_len, text, &in_len);
    if (zrc == Z_BUF_ERROR)  // the output is full but the stream goes on (or is cut short)
      who.fail("the compressed JSON does not end within the ", h.text_len,
               " bytes the header says; expected a zlib stream of exactly ", h.text_len, " bytes");
    if (zrc != Z_OK)
      who.fail("the ", h.json_len, " bytes of compressed JSON do not inflate (zlib: ", zError(zrc),
               "); expected a zlib stream of ", h.text_len, " bytes of JSON");
    if (out_len != h.text_len)
      who.fail("the compressed JSON inflates to ", out_len, " bytes; expected ", h.text_len,
               " as the header says");
    if (in_len != h.json_len)
      who.fail("the zlib stream ends after ", in_len, " of the ", h.json_len,
               " bytes of compressed JSON; expected it to fill them");
    text = inflated.data();
  }
  json doc = parse_json_text(text, size_t(h.text_len), who);
  check_object(doc, "the JSON description", who);
  const std::string& format = get_string(field(doc, "format", "the JSON description", who), "\"format\"", who);
  if (format != kFormatName) who.fail("\"format\" is \"", printable(format), "\"; expected \"", kFormatName, "\"");
  const int64_t jversion = get_int(field(doc, "version", "the JSON description", who), "\"version\"", who);
  if (jversion != int64_t(h.version))
    who.fail("the JSON says version ", jversion, " but the header says ", h.version, "; expected them to agree");
  check_object(field(doc, "meta", "the JSON description", who), "\"meta\"", who);
  return doc;
}

}  // namespace

Graph parse_program(const uint8_t* data, size_t size, const std::string& what) {
  const Who who{"program file '" + what + "': "};
  const Header h = parse_header(data, size, who);
  const uint32_t stored_crc = read_u32(data + size - kCrcBytes);
  const uint32_t actual_crc = crc32_of(data, size - kCrcBytes);
  if (stored_crc != actual_crc)
    who.fail("checksum mismatch: the file says CRC-32 ", stored_crc, " but its bytes give ", actual_crc,
             "; expected them to agree (corrupt or truncated file)");

  const uint64_t data_start = align_up(h.header_bytes + h.json_len);
  if (data_start > size - kCrcBytes)
    who.fail("the data section should start at byte ", data_start, " but the file ends at ",
             size - kCrcBytes, " (before the checksum); truncated file?");
  for (uint64_t i = h.header_bytes + h.json_len; i < data_start; ++i)
    if (data[i] != 0)
      who.fail("byte ", i, " of the padding after the JSON is ", int(data[i]), "; expected 0");
  const uint64_t data_size = size - kCrcBytes - data_start;
  const json doc = parse_description(data, h, who);

  Graph g;
  g.meta = doc.at("meta");  // an object: parse_description checked it

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

namespace {

// Opens a program file and returns its size; errors name the file.
std::ifstream open_program(const std::string& path, uintmax_t* size) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail("cannot read program file '", path, "': expected a file, found a directory");
  std::ifstream f(path, std::ios::binary);
  if (!f) fail("cannot read program file '", path, "': ", std::strerror(errno));
  *size = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read program file '", path, "': ", ec.message());
  return f;
}

void read_bytes(std::ifstream& f, uint8_t* out, uint64_t n, uintmax_t size, const std::string& path) {
  if (!f.read(reinterpret_cast<char*>(out), std::streamsize(n)))
    fail("cannot read program file '", path, "': reading its ", size, " bytes failed");
}

}  // namespace

Graph read_program(const std::string& path) {
  uintmax_t size = 0;
  std::ifstream f = open_program(path, &size);
  std::vector<uint8_t> bytes(static_cast<size_t>(size));
  read_bytes(f, bytes.data(), bytes.size(), size, path);
  return parse_program(bytes.data(), bytes.size(), path);
}

nlohmann::json read_program_meta(const std::string& path) {
  uintmax_t size = 0;
  std::ifstream f = open_program(path, &size);
  const Who who{"program file '" + path + "': "};
  std::vector<uint8_t> bytes(size_t(std::min<uintmax_t>(size, kZipHeaderBytes)));
  read_bytes(f, bytes.data(), bytes.size(), size, path);
  const Header h = parse_header(bytes.data(), size, who);
  // parse_header bounded json_len by the file's size, so this allocation is too.
  const size_t have = bytes.size(), need = size_t(h.header_bytes + h.json_len);
  if (need > have) {
    bytes.resize(need);
    read_bytes(f, bytes.data() + have, need - have, size, path);
  }
  return parse_description(bytes.data(), h, who).at("meta");
}

}  // namespace finch::runtime
