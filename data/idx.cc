// IDX reading and writing through zlib's gz* API, which reads plain files transparently.
#include "data/idx.h"

#include <sys/stat.h>

#include <zlib.h>

#include <cstdio>
#include <memory>
#include <vector>

#include "framework/checked_math.h"

namespace finch::data {

namespace {

struct GzCloser {
  void operator()(gzFile f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<std::remove_pointer_t<gzFile>, GzCloser>;

DType dtype_of_code(int code, const std::string& path) {
  switch (code) {
    case 0x08: return DType::u8;
    case 0x09: return DType::i8;
    case 0x0B: return DType::i16;
    case 0x0C: return DType::i32;
    case 0x0D: return DType::f32;
    case 0x0E: return DType::f64;
  }
  fail(path, ": not an IDX file: unknown type code 0x", std::hex, code,
       " (expected 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E)");
}

int code_of_dtype(DType t) {
  switch (t) {
    case DType::u8: return 0x08;
    case DType::i8: return 0x09;
    case DType::i16: return 0x0B;
    case DType::i32: return 0x0C;
    case DType::f32: return 0x0D;
    case DType::f64: return 0x0E;
    default: fail("write_idx: IDX has no type for ", dtype_name(t));
  }
}

// Reads exactly n bytes or explains how many were missing.
void read_exact(gzFile f, void* dst, size_t n, const std::string& path, const char* what) {
  size_t got = 0;
  while (got < n) {
    const unsigned chunk = unsigned(std::min<size_t>(n - got, 1u << 30));
    const int r = gzread(f, static_cast<char*>(dst) + got, chunk);
    if (r < 0) {
      int err;
      fail(path, ": cannot read ", what, ": ", gzerror(f, &err));
    }
    if (r == 0) break;
    got += size_t(r);
  }
  if (got != n)
    fail(path, ": truncated IDX file: expected ", n, " bytes of ", what, ", found ", got);
}

void swap_bytes(void* data, size_t count, size_t width) {
  auto* p = static_cast<uint8_t*>(data);
  for (size_t i = 0; i < count; ++i, p += width)
    for (size_t a = 0, b = width - 1; a < b; ++a, --b) std::swap(p[a], p[b]);
}

}  // namespace

Tensor read_idx(const std::string& path) {
  GzFile f(gzopen(path.c_str(), "rb"));
  if (!f) fail(path, ": cannot open the IDX file (does it exist?)");
  uint8_t magic[4];
  read_exact(f.get(), magic, 4, path, "the header");
  if (magic[0] != 0 || magic[1] != 0)
    fail(path, ": not an IDX file: the magic number must start with two zero bytes, found 0x",
         std::hex, int(magic[0]), " 0x", int(magic[1]));
  const DType dtype = dtype_of_code(magic[2], path);
  const int ndim = magic[3];
  if (ndim < 1 || ndim > 8) fail(path, ": IDX file with ", ndim, " dims (expected 1 to 8)");
  Shape shape(static_cast<size_t>(ndim));
  for (int d = 0; d < ndim; ++d) {
    uint8_t b[4];
    read_exact(f.get(), b, 4, path, "the dimensions");
    shape[size_t(d)] = int64_t(uint32_t(b[0]) << 24 | uint32_t(b[1]) << 16 | uint32_t(b[2]) << 8 | b[3]);
  }
  // A header is a promise the file must keep before anything is allocated: a 30-byte file
  // claiming 4e9×4e9 images would otherwise ask for exabytes. Plain files hold the data
  // themselves; deflate expands at most 1032:1, so a .gz of n bytes holds at most 1032·n.
  const int64_t promised = checked_mul(checked_numel(shape, path.c_str()), int64_t(dtype_size(dtype)), path.c_str());
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    const int64_t header = 4 + 4 * int64_t(ndim), file = int64_t(st.st_size);
    const bool plain = gzdirect(f.get()) == 1;
    const int64_t most = plain ? file - header : (file > (int64_t(1) << 52) ? promised : file * 1032);
    if (promised > most && plain)
      fail(path, ": truncated IDX file: expected ", promised, " bytes of data, found ", most, " (dims ",
           shape_str(shape), ")");
    if (promised > most)
      fail(path, ": IDX header promises dims ", shape_str(shape), " (", promised,
           " bytes of data), more than a compressed file of ", file, " bytes can hold (", most, ")");
  }
  Tensor t = empty(shape, dtype);
  read_exact(f.get(), t.raw_data(), t.nbytes(), path, "data");
  char extra;
  if (gzread(f.get(), &extra, 1) > 0)
    fail(path, ": IDX file has bytes after the ", t.nbytes(), " bytes of data that dims ",
         shape_str(shape), " promise");
  if (dtype_size(dtype) > 1) swap_bytes(t.raw_data(), size_t(t.numel()), dtype_size(dtype));
  return t;
}

void write_idx(const std::string& path, const Tensor& t, bool gzip) {
  const int code = code_of_dtype(t.dtype());
  if (t.dim() < 1 || t.dim() > 8) fail("write_idx: IDX holds 1 to 8 dims, got ", t.dim());
  std::vector<uint8_t> bytes = {0, 0, uint8_t(code), uint8_t(t.dim())};
  for (int64_t d : t.shape())
    for (int s = 24; s >= 0; s -= 8) bytes.push_back(uint8_t(uint32_t(d) >> s));
  const Tensor c = t.contiguous();
  const size_t header = bytes.size();
  bytes.resize(header + c.nbytes());
  std::memcpy(bytes.data() + header, c.raw_data(), c.nbytes());
  if (dtype_size(t.dtype()) > 1) swap_bytes(bytes.data() + header, size_t(c.numel()), dtype_size(t.dtype()));
  const std::string tmp = path + ".tmp";
  {
    GzFile f(gzopen(tmp.c_str(), gzip ? "wb" : "wbT"));  // "T": write without compression
    if (!f) fail("write_idx: cannot create ", tmp);
    if (gzwrite(f.get(), bytes.data(), unsigned(bytes.size())) != int(bytes.size()))
      fail("write_idx: short write to ", tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail("write_idx: cannot rename ", tmp, " to ", path);
}

}  // namespace finch::data
