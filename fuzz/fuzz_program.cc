// libFuzzer target for the .finch program reader: any input must parse or throw finch::Error.
// Build and run: see fuzz/README.md (not part of the CMake build; needs clang's libFuzzer).
#include <zlib.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "framework/error.h"
#include "runtime/program_file.h"

namespace {

void parse(const uint8_t* data, size_t size) {
  try {
    finch::runtime::Graph g = finch::runtime::parse_program(data, size, "fuzz");
    // Touch every constant byte so the sanitizers see any out-of-bounds copy.
    volatile uint8_t sink = 0;
    for (const finch::runtime::Value& v : g.values) {
      if (!v.is_constant()) continue;
      const uint8_t* p = static_cast<const uint8_t*>(v.data.raw_data());
      for (size_t i = 0; i < v.data.nbytes(); ++i) sink = uint8_t(sink ^ p[i]);
    }
  } catch (const finch::Error&) {
    // Rejecting a bad file with a clear message is the correct outcome.
  }
  // Any other exception escapes and libFuzzer reports it as a crash.
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  parse(data, size);
  // Almost every mutation breaks the CRC-32 and stops there, so each input is also tried with
  // its last 4 bytes replaced by the right checksum: that sends the mutations on to the length,
  // zlib, JSON and graph checks behind it.
  if (size >= 4) {
    std::vector<uint8_t> fixed(data, data + size);
    const uint32_t crc = uint32_t(crc32_z(0, fixed.data(), size - 4));
    std::memcpy(fixed.data() + size - 4, &crc, 4);
    parse(fixed.data(), fixed.size());
  }
  return 0;
}
