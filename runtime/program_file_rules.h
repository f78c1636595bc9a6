// Internal to the .finch reader and writer (program_file.cc, program_file_read.cc): the
// format's constants, error prefixes, and the rules both sides check, so a program that is
// written can always be read. Not part of the runtime's API.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include <nlohmann/json.hpp>

#include "framework/error.h"
#include "runtime/graph.h"
#include "runtime/program_file.h"

namespace finch::runtime::detail {

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

uint64_t align_up(uint64_t x);
uint32_t crc32_of(const uint8_t* p, size_t n);
uint32_t read_u32(const uint8_t* p);
uint64_t read_u64(const uint8_t* p);
std::string brief(const json& v);
std::string printable(const uint8_t* p, size_t n);
std::string printable(const std::string& s);
std::string value_desc(const Graph& g, int32_t i);
std::string node_desc(const Graph& g, size_t j);
uint64_t checked_nbytes(const Shape& shape, DType dt, const std::string& where, const Who& who);
void check_quant(const QuantInfo& q, const Shape& shape, const std::string& where, const Who& who);
void check_structure(const Graph& g, const Who& who);

}  // namespace finch::runtime::detail
