// Program file surgery for tests: split a .finch file into its parts (header fields, JSON text,
// data section), edit them, join them back with a fresh CRC-32, so a test can place damage
// behind the checksum where only the reader's later checks can catch it.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

namespace finch::test {

struct ProgramParts {
  uint32_t version = 1;
  uint32_t flags = 1;           // bit 0: join() compresses the JSON
  std::string json;             // the uncompressed JSON text
  std::vector<uint8_t> data;    // the data section
};

inline uint32_t get_u32(const std::vector<uint8_t>& f, size_t at) {
  uint32_t v;
  std::memcpy(&v, f.data() + at, 4);
  return v;
}
inline uint64_t get_u64(const std::vector<uint8_t>& f, size_t at) {
  uint64_t v;
  std::memcpy(&v, f.data() + at, 8);
  return v;
}
inline void put_u32(std::vector<uint8_t>& f, size_t at, uint32_t v) { std::memcpy(f.data() + at, &v, 4); }
inline void put_u64(std::vector<uint8_t>& f, size_t at, uint64_t v) { std::memcpy(f.data() + at, &v, 8); }

// Rewrites the last 4 bytes with the CRC-32 of everything before them.
inline void fix_crc(std::vector<uint8_t>& f) {
  put_u32(f, f.size() - 4, uint32_t(crc32_z(0, f.data(), f.size() - 4)));
}

inline size_t header_bytes(const std::vector<uint8_t>& f) { return (get_u32(f, 12) & 1) ? 32 : 24; }
inline size_t align64(size_t x) { return (x + 63) / 64 * 64; }
// Where the data section starts in a well-formed file.
inline size_t data_start(const std::vector<uint8_t>& f) {
  return align64(header_bytes(f) + size_t(get_u64(f, 16)));
}

// The parts of a well-formed file (throws std::runtime_error on one it cannot take apart).
inline ProgramParts split_program(const std::vector<uint8_t>& f) {
  ProgramParts p;
  p.version = get_u32(f, 8);
  p.flags = get_u32(f, 12);
  const size_t hb = header_bytes(f), j = size_t(get_u64(f, 16));
  if (p.flags & 1) {
    uLongf u = uLongf(get_u64(f, 24));
    p.json.resize(size_t(u));
    if (uncompress(reinterpret_cast<Bytef*>(p.json.data()), &u, f.data() + hb, uLong(j)) != Z_OK)
      throw std::runtime_error("split_program: the JSON does not inflate");
  } else {
    p.json.assign(reinterpret_cast<const char*>(f.data()) + hb, j);
  }
  p.data.assign(f.begin() + long(data_start(f)), f.end() - 4);
  return p;
}

// The file of `p`: header, JSON (zlib level 9 when flags bit 0 is set), zero padding to 64,
// the data section, CRC-32.
inline std::vector<uint8_t> join_program(const ProgramParts& p) {
  std::vector<uint8_t> section(p.json.begin(), p.json.end());
  if (p.flags & 1) {
    uLongf n = compressBound(uLong(p.json.size()));
    section.resize(size_t(n));
    compress2(section.data(), &n, reinterpret_cast<const Bytef*>(p.json.data()), uLong(p.json.size()), 9);
    section.resize(size_t(n));
  }
  std::vector<uint8_t> f(8 + 4 + 4 + 8, 0);
  std::memcpy(f.data(), "FINCHPRG", 8);
  put_u32(f, 8, p.version);
  put_u32(f, 12, p.flags);
  put_u64(f, 16, section.size());
  if (p.flags & 1) {
    f.resize(32);
    put_u64(f, 24, p.json.size());
  }
  f.insert(f.end(), section.begin(), section.end());
  f.resize(align64(f.size()), 0);
  f.insert(f.end(), p.data.begin(), p.data.end());
  f.resize(f.size() + 4);
  fix_crc(f);
  return f;
}

}  // namespace finch::test
