// safetensors reader (validating every field) and writer (atomic, order-preserving).
#include "framework/safetensors.h"

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <ostream>
#include <set>
#include <nlohmann/json.hpp>

#include "framework/atomic_file.h"

namespace finch {

// Tensor bytes are copied verbatim between memory and file; the format is little-endian.
static_assert(std::endian::native == std::endian::little,
              "safetensors IO assumes a little-endian host (x86-64, AArch64, ARMv7 are)");

namespace {

using ojson = nlohmann::ordered_json;

// The reference implementation's limit (MAX_HEADER_SIZE): a larger length field means a corrupt
// or foreign file, and refusing it keeps us from allocating gigabytes on garbage.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
constexpr const char* kMetadataKey = "__metadata__";
constexpr const char* kDtypeList = "F32, F64, F16, BF16, I8, U8, I16, I32, I64 or BOOL";

// All reader errors share the prefix naming the file.
template <typename... Args>
[[noreturn]] void bad(const std::string& file, const Args&... args) {
  fail("safetensors file '", file, "': ", args...);
}

// One tensor as described by the header, validated against the data section.
struct Entry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range in the data section
  size_t header_index = 0;      // position in the header, to keep the order stable on ties
};

struct Header {
  std::vector<Entry> entries;  // sorted by data offset (the file order)
  std::map<std::string, std::string> metadata;
};

uint64_t read_le_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Validates the header length field against the bytes available; returns N.
uint64_t check_header_length(const uint8_t* first8, uint64_t file_size, const std::string& file) {
  if (file_size < 8)
    bad(file, "expected at least 8 bytes (the header length), found a file of ", file_size,
        " bytes");
  const uint64_t n = read_le_u64(first8);
  if (n > kMaxHeaderBytes)
    bad(file, "the header length field says ", n, " bytes; expected at most ", kMaxHeaderBytes,
        " (corrupt, or not a safetensors file)");
  if (n > file_size - 8)
    bad(file, "the header length field says ", n, " bytes, but only ", file_size - 8,
        " bytes follow it (truncated file?)");
  return n;
}

// Shape and data_offsets elements: JSON integers that are >= 0 and fit in int64.
uint64_t json_uint(const ojson& v, const std::string& file, const std::string& what) {
  if (v.is_number_unsigned()) {
    const uint64_t u = v.get<uint64_t>();
    if (u > uint64_t(std::numeric_limits<int64_t>::max()))
      bad(file, what, " is ", u, "; expected a value below 2^63");
    return u;
  }
  if (v.is_number_integer()) bad(file, what, " is ", v.get<int64_t>(), "; expected a non-negative integer");
  bad(file, what, " is ", v.dump(), " (a JSON ", v.type_name(), "); expected a non-negative integer");
}

Entry parse_entry(const std::string& name, const ojson& v, const std::string& file) {
  const std::string who = "tensor \"" + name + "\"";
  if (!v.is_object())
    bad(file, who, ": expected an object with dtype, shape and data_offsets, found a JSON ",
        v.type_name());
  for (const char* key : {"dtype", "shape", "data_offsets"})
    if (!v.contains(key)) bad(file, who, ": expected a \"", key, "\" field, found none");
  Entry e;
  e.name = name;

  const ojson& dt = v["dtype"];
  if (!dt.is_string()) bad(file, who, ": expected \"dtype\" to be a string, found ", dt.dump());
  const std::string dts = dt.get<std::string>();
  bool known = false;
  for (DType t : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8, DType::u8,
                  DType::i16, DType::i32, DType::i64, DType::b8})
    if (dts == dtype_name(t)) e.dtype = t, known = true;
  if (!known) bad(file, who, ": expected dtype ", kDtypeList, ", found \"", dts, "\"");

  const ojson& sh = v["shape"];
  if (!sh.is_array()) bad(file, who, ": expected \"shape\" to be an array, found ", sh.dump());
  // numel overflow: every partial product must stay below 2^63 (checked by division so the
  // check itself cannot overflow). A zero dim makes numel 0 whatever the rest says.
  uint64_t numel = 1;
  bool overflow = false;
  for (size_t i = 0; i < sh.size(); ++i) {
    const uint64_t d = json_uint(sh[i], file, who + " shape[" + std::to_string(i) + "]");
    e.shape.push_back(int64_t(d));
    if (d != 0 && numel > uint64_t(std::numeric_limits<int64_t>::max()) / d) overflow = true;
    else numel *= d;
  }
  const bool has_zero = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
  if (has_zero) numel = 0;
  else if (overflow)
    bad(file, who, ": shape ", shape_str(e.shape), " has more than 2^63 elements");

  const ojson& off = v["data_offsets"];
  if (!off.is_array() || off.size() != 2)
    bad(file, who, ": expected \"data_offsets\" to be [begin, end], found ", off.dump());
  e.begin = json_uint(off[0], file, who + " data_offsets[0]");
  e.end = json_uint(off[1], file, who + " data_offsets[1]");
  if (e.begin > e.end)
    bad(file, who, ": expected data_offsets [begin, end] with begin <= end, found [", e.begin,
        ", ", e.end, "]");
  const uint64_t esize = dtype_size(e.dtype);
  if (numel > uint64_t(std::numeric_limits<int64_t>::max()) / esize)
    bad(file, who, ": shape ", shape_str(e.shape), " of ", dts, " needs more than 2^63 bytes");
  if (e.end - e.begin != numel * esize)
    bad(file, who, ": shape ", shape_str(e.shape), " of ", dts, " needs ", numel * esize,
        " bytes, but data_offsets [", e.begin, ", ", e.end, "] hold ", e.end - e.begin);
  return e;
}

// Parses and validates the JSON header against a data section of `data_size` bytes.
Header parse_header(const char* text, size_t n, uint64_t data_size, const std::string& file) {
  // nlohmann keeps the last of two equal keys silently; a file naming a tensor twice is
  // ambiguous, so the parser callback records the first duplicate key of any object.
  std::vector<std::set<std::string>> open_objects;
  std::string duplicate;
  auto on_event = [&](int, ojson::parse_event_t ev, ojson& parsed) {
    if (ev == ojson::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (ev == ojson::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (ev == ojson::parse_event_t::key && !open_objects.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!open_objects.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  ojson h;
  try {
    h = ojson::parse(text, text + n, on_event);
  } catch (const ojson::exception& ex) {
    bad(file, "expected the header to be valid JSON, found a parse error: ", ex.what());
  }
  if (!duplicate.empty()) bad(file, "the header lists the key \"", duplicate, "\" twice; expected unique keys");
  if (!h.is_object()) bad(file, "expected the header to be a JSON object, found a JSON ", h.type_name());

  Header out;
  size_t index = 0;
  for (const auto& [name, v] : h.items()) {
    if (name == kMetadataKey) {
      if (v.is_null()) continue;  // serde's Option: the reference reads null as "no metadata"
      if (!v.is_object())
        bad(file, "expected \"__metadata__\" to be an object of strings, found a JSON ", v.type_name());
      for (const auto& [k, s] : v.items()) {
        if (!s.is_string())
          bad(file, "__metadata__ \"", k, "\" is ", s.dump(), "; expected a string value");
        out.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    Entry e = parse_entry(name, v, file);
    if (e.end > data_size)
      bad(file, "tensor \"", name, "\" has data_offsets [", e.begin, ", ", e.end,
          "] but the data section is only ", data_size, " bytes (truncated file?)");
    e.header_index = index++;
    out.entries.push_back(std::move(e));
  }

  // The reference's rule: sorted by offset, the tensors tile [0, data_size) exactly. Overlaps
  // would let one write alias another tensor; holes and trailing bytes hide unaccounted data.
  std::sort(out.entries.begin(), out.entries.end(), [](const Entry& a, const Entry& b) {
    return std::tie(a.begin, a.end, a.header_index) < std::tie(b.begin, b.end, b.header_index);
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (const Entry& e : out.entries) {
    if (e.begin < covered)
      bad(file, "tensor \"", e.name, "\" at data_offsets [", e.begin, ", ", e.end,
          "] overlaps tensor \"", prev->name, "\" at [", prev->begin, ", ", prev->end,
          "]; expected disjoint byte ranges");
    if (e.begin > covered)
      bad(file, "bytes [", covered, ", ", e.begin,
          ") of the data section belong to no tensor; expected the tensors to cover the data "
          "section without holes");
    covered = e.end;
    prev = &e;
  }
  if (covered != data_size)
    bad(file, "the data section has ", data_size, " bytes but the tensors cover only ", covered,
        "; expected no trailing bytes");
  return out;
}

// Makes the tensors of `h`, filling each one's bytes with read(entry, dst). Entries come in
// offset order and tile the data section, so a file can be read front to back.
template <typename ReadFn>
SafetensorsFile materialize(Header&& h, const std::string& file, ReadFn&& read) {
  SafetensorsFile out;
  out.source = file;
  out.metadata = std::move(h.metadata);
  out.tensors.reserve(h.entries.size());
  for (Entry& e : h.entries) {
    Tensor t = empty(e.shape, e.dtype);
    read(e, static_cast<uint8_t*>(t.raw_data()));
    if (e.dtype == DType::b8) {
      // A byte other than 0/1 read as C++ bool is undefined behaviour; torch writes only 0/1.
      const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
      for (uint64_t i = 0; i < e.end - e.begin; ++i)
        if (p[i] > 1)
          bad(file, "BOOL tensor \"", e.name, "\" holds the byte ", int(p[i]), " at element ", i,
              "; expected 0 or 1");
    }
    out.tensors.emplace_back(std::move(e.name), std::move(t));
  }
  return out;
}

// The padded header text and the contiguous tensors to write after it.
std::string build_header(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata,
                         std::vector<Tensor>& contiguous) {
  ojson h = ojson::object();
  if (!metadata.empty()) {
    ojson m = ojson::object();
    for (const auto& [k, v] : metadata) m[k] = v;
    h[kMetadataKey] = std::move(m);
  }
  std::set<std::string> seen;
  uint64_t offset = 0;
  contiguous.clear();
  for (const auto& [name, t] : tensors) {
    if (name.empty()) fail("save_safetensors: expected a non-empty tensor name, got \"\"");
    if (name == kMetadataKey)
      fail("save_safetensors: the tensor name \"__metadata__\" is reserved for the metadata object");
    if (!seen.insert(name).second)
      fail("save_safetensors: expected unique tensor names, got \"", name, "\" twice");
    if (!t.defined()) fail("save_safetensors: tensor \"", name, "\" is undefined");
    Tensor c = t.contiguous();
    const uint64_t nb = c.nbytes();
    h[name] = ojson{{"dtype", dtype_name(c.dtype())},
                    {"shape", c.shape()},
                    {"data_offsets", {offset, offset + nb}}};
    offset += nb;
    contiguous.push_back(std::move(c));
  }
  std::string text;
  try {
    text = h.dump();
  } catch (const ojson::exception& ex) {  // names or metadata that are not valid UTF-8
    fail("save_safetensors: a tensor name or metadata string is not valid UTF-8 (", ex.what(), ")");
  }
  // Spaces are JSON whitespace; padding to 8 puts the data section on an 8-byte boundary.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

std::string le_u64(uint64_t v) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[size_t(i)] = char((v >> (8 * i)) & 0xff);
  return s;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

}  // namespace

bool SafetensorsFile::contains(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

const Tensor& SafetensorsFile::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  fail("safetensors file '", source, "': expected a tensor named \"", name, "\", found none (the file has ",
       tensors.size(), " tensors)");
}

std::map<std::string, Tensor> SafetensorsFile::to_map() const {
  return std::map<std::string, Tensor>(tensors.begin(), tensors.end());
}

SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name_for_errors) {
  const std::string& file = name_for_errors;
  const uint64_t n = check_header_length(data, size, file);
  const uint8_t* data_section = data + 8 + n;
  Header h = parse_header(reinterpret_cast<const char*>(data + 8), size_t(n), size - 8 - n, file);
  return materialize(std::move(h), file, [&](const Entry& e, uint8_t* dst) {
    if (e.end > e.begin) std::memcpy(dst, data_section + e.begin, size_t(e.end - e.begin));
  });
}

SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& name_for_errors) {
  return parse_safetensors(bytes.data(), bytes.size(), name_for_errors);
}

SafetensorsFile load_safetensors(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    fail("cannot read safetensors file '", path, "': expected a file, found a directory");
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "rb"));
  if (!f) fail("cannot read safetensors file '", path, "': ", std::strerror(errno));
  const uintmax_t file_size = std::filesystem::file_size(path, ec);
  if (ec) fail("cannot read safetensors file '", path, "': ", ec.message());

  uint8_t first8[8] = {};
  const size_t got8 = std::fread(first8, 1, 8, f.get());
  const uint64_t n = check_header_length(first8, got8 < 8 ? got8 : uint64_t(file_size), path);
  std::string text(size_t(n), '\0');
  if (std::fread(text.data(), 1, text.size(), f.get()) != text.size())
    fail("cannot read safetensors file '", path, "': reading the ", n, "-byte header failed");
  Header h = parse_header(text.data(), text.size(), uint64_t(file_size) - 8 - n, path);
  // Read each tensor straight into its storage: no second copy of a large checkpoint in memory.
  return materialize(std::move(h), path, [&](const Entry& e, uint8_t* dst) {
    const size_t nb = size_t(e.end - e.begin);
    if (nb > 0 && std::fread(dst, 1, nb, f.get()) != nb)
      fail("cannot read safetensors file '", path, "': the data of tensor \"", e.name,
           "\" ends early (was the file changed while reading?)");
  });
}

std::vector<uint8_t> serialize_safetensors(const NamedTensors& tensors,
                                           const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> contiguous;
  const std::string header = build_header(tensors, metadata, contiguous);
  size_t total = 8 + header.size();
  for (const Tensor& t : contiguous) total += t.nbytes();
  std::vector<uint8_t> out;
  out.reserve(total);
  const std::string len = le_u64(header.size());
  out.insert(out.end(), len.begin(), len.end());
  out.insert(out.end(), header.begin(), header.end());
  for (const Tensor& t : contiguous) {
    const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
    out.insert(out.end(), p, p + t.nbytes());
  }
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> contiguous;
  const std::string header = build_header(tensors, metadata, contiguous);
  write_file_atomically(path, [&](std::ostream& os) {
    const std::string len = le_u64(header.size());
    os.write(len.data(), 8);
    os.write(header.data(), std::streamsize(header.size()));
    for (const Tensor& t : contiguous)
      os.write(static_cast<const char*>(t.raw_data()), std::streamsize(t.nbytes()));
  });
}

}  // namespace finch
