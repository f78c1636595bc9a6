// safetensors reading and writing: the tensor file format of PyTorch/HuggingFace checkpoints.
//
// Layout (https://github.com/huggingface/safetensors):
//   [8 bytes]  N, the header length, unsigned little-endian
//   [N bytes]  UTF-8 JSON object: {"name": {"dtype": "F32", "shape": [2, 3],
//                                           "data_offsets": [begin, end]}, ...,
//                                  "__metadata__": {"key": "value", ...}}   (metadata optional)
//   [rest]     the data section: raw little-endian tensor bytes, row-major; data_offsets are
//              byte offsets relative to the start of this section.
//
// The reader trusts nothing: every field is validated with the same rules as the reference
// implementation (tensors tile the data section exactly: no overlap, no hole, no trailing bytes)
// and a bad file is rejected with one finch::Error sentence naming the file, what was expected
// and what was found. Tensors read are fresh contiguous finch tensors (64-byte aligned storage).
//
// The writer keeps the caller's order: tensors are stored, and listed in the header, in the
// order given (the reference writer sorts by dtype alignment then name instead; both are
// readable by either side). Keeping the order means a state_dict round-trips in module order.
// The header is padded with spaces to a multiple of 8 bytes, as the reference does, so the data
// section starts 8-byte aligned in the file. Output is written atomically (atomic_file.h).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "framework/tensor.h"

namespace finch {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

struct SafetensorsFile {
  NamedTensors tensors;                         // in file order (ascending data offset)
  std::map<std::string, std::string> metadata;  // the "__metadata__" object, if any
  std::string source;                           // the file name, for error messages

  bool contains(const std::string& name) const;
  // The tensor called `name`; throws finch::Error naming the file and the missing tensor.
  const Tensor& at(const std::string& name) const;
  // name -> tensor, for code that looks tensors up by name (a state_dict).
  std::map<std::string, Tensor> to_map() const;
};

// Reads and validates a whole file. Throws finch::Error for a missing/unreadable file or any
// format violation.
SafetensorsFile load_safetensors(const std::string& path);

// Parses an in-memory file (for tests, fuzzing, embedded data). `name_for_errors` stands in for
// the file name in error messages.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name_for_errors);
SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& name_for_errors);

// The complete file as bytes. Non-contiguous tensors are written contiguous. Throws finch::Error
// on an undefined tensor, an empty or duplicate name, or the reserved name "__metadata__".
std::vector<uint8_t> serialize_safetensors(const NamedTensors& tensors,
                                           const std::map<std::string, std::string>& metadata = {});

// Writes the file atomically (temporary file in the same directory, fsync, rename). Throws
// finch::Error if the directory does not exist or writing fails.
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace finch
