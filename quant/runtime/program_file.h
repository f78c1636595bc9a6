// The .finch program file: a versioned, checksummed container for a runtime Graph (graph.h).
//
// Layout (all integers little-endian):
//   offset 0   8 bytes   magic "FINCHPRG"
//   offset 8   u32       format version (kProgramVersion)
//   offset 12  u32       flags, 0 (no flag is defined yet; a reader rejects any it does not know)
//   offset 16  u64       J, the length of the JSON text
//   offset 24  J bytes   UTF-8 JSON describing the graph (below)
//              zero bytes up to the next multiple of 64 (from the start of the file)
//              the data section: every constant's raw bytes (row-major, little-endian), each at
//              an offset that is a multiple of 64 relative to the start of the section (so also
//              64-aligned in the file, ready for an mmap later), zero bytes between them
//   last 4     u32       CRC-32 (zlib's crc32) of every byte before it
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
// safetensors). Node input -1 marks an absent optional input (ops.md).
//
// The reader trusts nothing. After the minimal header checks (magic, version, flags, lengths) it
// verifies the CRC, so random corruption is reported as a checksum mismatch; then it validates
// every field and the graph's structure (indices in range, each value produced once, nothing
// read before it is produced, unique names), and fails with one finch::Error sentence naming the
// file, what was expected and what was found. Allocation is bounded by the file's size. Op names
// and attributes are not checked here: the executor owns the op vocabulary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "quant/runtime/graph.h"

namespace finch::runtime {

inline constexpr uint32_t kProgramVersion = 1;

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

}  // namespace finch::runtime
