// The IDX format of MNIST and Fashion-MNIST (LeCun et al.), plain or gzip-compressed.
// Layout: 2 zero bytes, a type code (0x08 u8, 0x09 i8, 0x0B i16, 0x0C i32, 0x0D f32, 0x0E f64),
// the number of dims, then each dim as a big-endian u32, then the data, big-endian.
#pragma once

#include <string>

#include "framework/tensor.h"

namespace finch::data {

// Reads a whole IDX file (gzip detected by its magic bytes) into a tensor of the file's type.
// Rejects a bad file with a finch::Error naming it: wrong magic, unknown type code, too many
// dims, or data shorter/longer than the dims promise.
Tensor read_idx(const std::string& path);

// Writes `t` (U8, I8, I16, I32, F32 or F64) as IDX; gzip-compressed when `gzip` is true.
// The file is written to a temporary name and renamed.
void write_idx(const std::string& path, const Tensor& t, bool gzip = false);

}  // namespace finch::data
