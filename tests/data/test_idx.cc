// IDX reading: round trips (plain and gzip), and a clear error for each kind of bad file.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <zlib.h>

#include "data/idx.h"
#include "framework/random.h"

using namespace finch;

namespace {
std::string tmp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("finch_idx_" + name)).string();
}
void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}
std::string error_of(const std::string& path) {
  try {
    data::read_idx(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST(Idx, RoundTripsEveryTypePlainAndGzip) {
  Generator g(3);
  for (bool gz : {false, true}) {
    Tensor u8 = randint(0, 256, {5, 3, 4}, g, DType::u8);
    Tensor i32 = randint(-100000, 100000, {7}, g, DType::i32);
    Tensor f64 = randn({2, 3}, g, DType::f64);
    for (const Tensor& t : {u8, i32, f64}) {
      const std::string p = tmp_path(gz ? "rt.gz" : "rt");
      data::write_idx(p, t, gz);
      Tensor back = data::read_idx(p);
      EXPECT_EQ(back.dtype(), t.dtype());
      EXPECT_EQ(back.shape(), t.shape());
      EXPECT_EQ(back.to_vector<double>(), t.to_vector<double>());
      std::remove(p.c_str());
    }
  }
}

TEST(Idx, ReadsBigEndianLikeTheMnistFiles) {
  // labels file: magic 0x00000801, 3 items
  const std::string p = tmp_path("labels");
  write_bytes(p, {0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9});
  EXPECT_EQ(data::read_idx(p).to_vector<int>(), (std::vector<int>{7, 2, 9}));
  write_bytes(p, {0, 0, 0x0B, 1, 0, 0, 0, 2, 0x01, 0x02, 0xff, 0xfe});
  EXPECT_EQ(data::read_idx(p).to_vector<int>(), (std::vector<int>{258, -2}));
  std::remove(p.c_str());
}

TEST(Idx, RejectsBadFilesWithASentence) {
  const std::string p = tmp_path("bad");
  write_bytes(p, {1, 0, 8, 1, 0, 0, 0, 1, 5});
  EXPECT_NE(error_of(p).find("two zero bytes"), std::string::npos) << error_of(p);
  write_bytes(p, {0, 0, 0x42, 1, 0, 0, 0, 1, 5});
  EXPECT_NE(error_of(p).find("unknown type code"), std::string::npos) << error_of(p);
  write_bytes(p, {0, 0, 8, 1, 0, 0, 0, 4, 5});
  EXPECT_NE(error_of(p).find("truncated IDX file: expected 4 bytes of data, found 1"), std::string::npos)
      << error_of(p);
  write_bytes(p, {0, 0, 8, 1, 0, 0, 0, 1, 5, 6});
  EXPECT_NE(error_of(p).find("bytes after"), std::string::npos) << error_of(p);
  write_bytes(p, {0, 0});
  EXPECT_NE(error_of(p).find("truncated"), std::string::npos) << error_of(p);
  EXPECT_NE(error_of(p).find(p), std::string::npos);
  std::remove(p.c_str());
  EXPECT_NE(error_of(tmp_path("missing")).find("cannot open"), std::string::npos);
}

// A tiny file whose header asks for gigabytes fails before anything is allocated, plain or gzip.
TEST(Idx, HugeDimsInATinyFileFailBeforeAllocating) {
  const std::string p = tmp_path("huge");
  write_bytes(p, {0, 0, 8, 2, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 5});
  EXPECT_NE(error_of(p).find("truncated IDX file"), std::string::npos) << error_of(p);
  EXPECT_NE(error_of(p).find("[2147483647, 2147483647]"), std::string::npos) << error_of(p);
  write_bytes(p, {0, 0, 8, 3, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 16, 5});
  EXPECT_NE(error_of(p).find("more elements than fit in 64 bits"), std::string::npos) << error_of(p);
  // A gzip file with a 2^20 × 2^20 header and no data: deflate expands at most 1032:1.
  const std::string q = tmp_path("huge.gz");
  gzFile f = gzopen(q.c_str(), "wb");
  const uint8_t hdr[] = {0, 0, 8, 2, 0x00, 0x10, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00};
  gzwrite(f, hdr, sizeof hdr);
  gzclose(f);
  EXPECT_NE(error_of(q).find("more than a compressed file"), std::string::npos) << error_of(q);
  std::remove(p.c_str());
  std::remove(q.c_str());
}
