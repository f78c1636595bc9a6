// 64-bit FNV-1a hashes for launch fingerprints: the processes of a data-parallel job compare
// hashes of what they loaded (model layout, training data, vocabulary) before training. A check
// against accidents (another file, another version), not a defence against a forger.
#pragma once

#include <cstddef>
#include <cstdint>
#include <sstream>
#include <string>

namespace finch::train {

constexpr uint64_t kFingerprintSeed = 1469598103934665603ull;  // FNV-1a's offset basis

inline uint64_t fingerprint_hash(const void* data, size_t n, uint64_t h = kFingerprintSeed) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}
inline uint64_t fingerprint_hash(const std::string& s, uint64_t h = kFingerprintSeed) {
  return fingerprint_hash(s.data(), s.size(), h);
}

inline std::string fingerprint_hex(uint64_t v) {
  std::ostringstream os;
  os << std::hex << v;
  return os.str();
}

}  // namespace finch::train
