// The .finch program file: a versioned, checksummed container for a runtime Graph (graph.h).
//
// Layout (all integers little-endian):
//   offset 0   8 bytes   magic "FINCHPRG"
//   offset 8   u32       format version (kProgramVersion)
//   offset 12  u32       flags; bit 0 (kFlagZlibJson) = the JSON is zlib-compressed. No other
//                        bit is defined; a reader rejects any it does not know.
//   offset 16  u64       J, the length of the JSON section as stored
//   flag 0:   offset 24  J bytes  UTF-8 JSON describing the graph (below)
//   flag 1:   offset 24  u64      U, the length of the JSON text once uncompressed
//             offset 32  J bytes  a zlib stream (RFC 1950, compress2 level 9) of exactly those
//                                 U bytes of JSON and nothing after it
//              zero bytes up to the next multiple of 64 (from the start of the file)
//              the data section: every constant's raw bytes (row-major, little-endian), each at
//              an offset that is a multiple of 64 relative to the start of the section (so also
//              64-aligned in the file, ready for an mmap later), zero bytes between them
//   last 4     u32       CRC-32 (zlib's crc32) of every byte before it
// The writer always compresses: most of the JSON is per-channel scales and repeated keys. With
// short float scales (below) and zlib, the JSON of a per-channel int8 ResNet-20 shrinks about
// 5x and the file goes from 0.288x to 0.265x the size of the fp32 weights
// (ProgramFile.ResNet20JsonIsSmall measures it). Flag 0 files (the first writer's) stay readable; the flag leaves the
// uncompressed layout untouched, so the version is still 1 (an older reader rejects the flag
// with a clear sentence instead of misreading the file).
//
// The JSON:
//   {"format": "finch-program", "version": 1, "meta": {...},
//    "inputs": [value indices], "outputs": [value indices],
//    "values": [{"name": "fc.weight", "shape": [10, 64], "dtype": "I8",
//                "quant": {"scale": [...], "zero_point": [...], "axis": 0,
//                          "qmin": -127, "qmax": 127},          (integer-coded values only)
//                "data": {"offset": 0, "nbytes": 640}}, ...],  (constants only)
//    "nodes": [{"op": "qlinear", "name": "fc", "inputs": [0, 1, -1, 2], "outputs": [3],
//               "attrs": {...}}, ...]}
// dtype names are framework/dtype.h's (F32, F64, F16, BF16, I8, U8, I16, I32, I64, BOOL, as in
// safetensors). Node input -1 marks an absent optional input (ops.md). Scales are float32:
// each is written as the shortest decimal that reads back (decimal -> double -> float) as the
// same float bits ("0.0123" rather than the double "0.012299999594688416").
//
// The reader trusts nothing. After the minimal header checks (magic, version, flags, lengths) it
// verifies the CRC, so random corruption is reported as a checksum mismatch; then it validates
// every field and the graph's structure (indices in range, each value produced once, nothing
// read before it is produced, unique names), and fails with one finch::Error sentence naming the
// file, what was expected and what was found. Allocation is bounded by a fixed multiple of the
// file's size (the uncompressed JSON length is checked against zlib's maximum expansion and a
// 16 MiB cap before inflating). Op names and attributes are not checked here: the executor owns
// the op vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/graph.h"

namespace finch::runtime {

inline constexpr uint32_t kProgramVersion = 1;
inline constexpr uint32_t kFlagZlibJson = 1;  // header flag bit 0: the JSON is zlib-compressed

// The complete file as bytes. Throws finch::Error when the graph breaks a rule the reader checks
// (a constant whose tensor disagrees with its value's shape or dtype, bad quantization
// parameters, out-of-range indices, ...), so a program that is written can always be read.
std::vector<uint8_t> serialize_program(const Graph& g);

// Writes the file atomically (temporary file beside it, fsync, rename; framework/atomic_file.h).
void write_program(const Graph& g, const std::string& path);

// Parses an in-memory program; `what` names the source in error messages (a file name).
// Constants are fresh contiguous tensors with 64-byte-aligned storage.
Graph parse_program(const uint8_t* data, size_t size, const std::string& what);

// Reads and validates a whole file; errors name the file.
Graph read_program(const std::string& path);

// Only the graph's "meta" object: reads the header and the JSON section, not the constants, and
// checks everything in them as read_program does except the CRC (which covers the whole file).
// For routing a command by what a program is (a BERT, a series or an image program) without
// reading a large file twice; what then runs it reads it whole and checks the rest.
nlohmann::json read_program_meta(const std::string& path);

}  // namespace finch::runtime
