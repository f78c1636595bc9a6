// libFuzzer target for the safetensors reader: any input must parse or throw finch::Error.
// Build and run: see fuzz/README.md (not part of the CMake build; needs clang's libFuzzer).
#include <cstddef>
#include <cstdint>

#include "framework/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    finch::SafetensorsFile f = finch::parse_safetensors(data, size, "fuzz");
    // Touch every byte read so the sanitizers see any out-of-bounds copy.
    volatile uint8_t sink = 0;
    for (auto& [name, t] : f.tensors) {
      const uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
      for (size_t i = 0; i < t.nbytes(); ++i) sink = uint8_t(sink ^ p[i]);
    }
  } catch (const finch::Error&) {
    // Rejecting a bad file with a clear message is the correct outcome.
  }
  // Any other exception escapes and libFuzzer reports it as a crash.
  return 0;
}
