// .finch program writer (the format is described in program_file.h; the rules it shares with
// the reader are in program_file_rules.h).
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

// Constant bytes and header integers are copied verbatim between memory and file.
static_assert(std::endian::native == std::endian::little,
              ".finch IO assumes a little-endian host (x86-64, AArch64, ARMv7 are)");

using namespace detail;

namespace {

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

}  // namespace finch::runtime
