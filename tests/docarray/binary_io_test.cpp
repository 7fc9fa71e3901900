#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <msgpack.hpp>

#include <cstring>
#include <fstream>
#include <sstream>

#include "../support/temp_dir.hpp"
#include "docarray/binary_io.hpp"
#include "docarray/document_file.hpp"
#include "docarray/error.hpp"
#include "sample_documents.hpp"

using docarray::Compression;
using docarray::Document;
using docarray::DocumentArray;
using docarray::FormatError;
using docflow::testing::TempDir;

namespace {

DocumentArray sample(int n) {
  DocumentArray da;
  for (int i = 0; i < n; ++i) da.append(docflow::testing::full_document(i));
  return da;
}

std::string bytes_of(const DocumentArray& da, Compression c = Compression::None) {
  std::ostringstream out;
  docarray::BinaryWriter w(out, c);
  w.write(da);
  w.close();
  return out.str();
}

DocumentArray read_bytes(const std::string& bytes) {
  std::istringstream in(bytes);
  docarray::BinaryReader r(in, "mem.docs");
  DocumentArray out;
  Document d{std::string()};
  while (r.next(d)) out.append(d);
  return out;
}

// Reads `bytes` expecting a FormatError; returns it for inspection.
FormatError read_error(const std::string& bytes) {
  try {
    read_bytes(bytes);
  } catch (const FormatError& e) {
    return e;
  }
  BOOST_FAIL("expected a FormatError");
  throw std::logic_error("unreachable");
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_SUITE(binary_io)

BOOST_AUTO_TEST_CASE(every_field_round_trips_exactly) {
  DocumentArray da = sample(5);
  da[2].tensor = at::tensor({std::numeric_limits<float>::quiet_NaN(), -0.0f, 1e-45f});
  da[3].tensor = at::randn({2, 3}).to(at::kBFloat16);
  da[4].tensor = at::randint(0, 255, {4, 4}, at::kByte);
  da[4].embedding = at::empty({0, 3});
  for (Compression c : {Compression::None, Compression::Zstd}) {
    DocumentArray back = read_bytes(bytes_of(da, c));
    BOOST_TEST(back.size() == da.size());
    for (std::size_t i = 0; i < da.size(); ++i) {
      BOOST_TEST_CONTEXT("document " << i) BOOST_TEST(docarray::equal(da[i], back[i]));
    }
    BOOST_TEST(back[0].tags.find("big")->as_int() == 9007199254740993LL);
    BOOST_TEST(back[0].tags.find("one_as_double")->is_double());
    BOOST_TEST(back[0].chunks[0].chunks[0].embedding.scalar_type() == at::kHalf);
    BOOST_TEST(back.get(da[3].id).text == da[3].text);
  }
}

BOOST_AUTO_TEST_CASE(files_and_empty_arrays) {
  TempDir dir;
  DocumentArray da = sample(3);
  docarray::save_binary(da, dir.file("a.docs"), Compression::Zstd);
  BOOST_TEST(docarray::is_binary_file(dir.file("a.docs")));
  BOOST_TEST(docarray::equal(docarray::load_binary(dir.file("a.docs")), da));
  BOOST_TEST(docarray::equal(docarray::load_documents(dir.file("a.docs")), da));
  docarray::save_binary(DocumentArray(), dir.file("empty.docs"));
  BOOST_TEST(docarray::load_binary(dir.file("empty.docs")).empty());
  BOOST_CHECK_THROW(docarray::load_binary(dir.file("missing.docs")), docarray::Error);
}

BOOST_AUTO_TEST_CASE(zstd_compresses_redundant_data) {
  DocumentArray da;
  for (int i = 0; i < 100; ++i) {
    Document d;
    d.embedding = at::zeros({512});
    da.append(d);
  }
  BOOST_TEST(bytes_of(da, Compression::Zstd).size() * 20 < bytes_of(da).size());
}

BOOST_AUTO_TEST_CASE(wrong_magic_and_version) {
  std::string good = bytes_of(sample(1));
  FormatError e = read_error("{\"id\": \"x\"}\n");
  BOOST_TEST(e.record() == -1);
  BOOST_TEST(contains(e.what(), "mem.docs: header"));
  BOOST_TEST(contains(e.what(), "wrong magic"));

  for (char newer : {'\x03', '\x00'}) {
    std::string other = good;
    other[8] = newer;
    e = read_error(other);
    BOOST_TEST(e.offset() == 8u);
    BOOST_TEST(contains(e.what(), "format version " + std::to_string(newer) + " is not supported"));
    BOOST_TEST(contains(e.what(), "reads versions 1 to 2"));
  }

  e = read_error(good.substr(0, 12));
  BOOST_TEST(contains(e.what(), "truncated header"));
}

BOOST_AUTO_TEST_CASE(truncation_anywhere_names_record_and_offset) {
  DocumentArray da = sample(3);
  std::string good = bytes_of(da);
  std::uint32_t len0;
  std::memcpy(&len0, good.data() + 16, 4);
  const std::uint64_t record1 = 16 + 4 + len0;
  // Cut inside every region: header, first length, first record, second
  // record, exactly at a record boundary, inside the end marker.
  struct Cut { std::size_t at; std::int64_t record; std::uint64_t offset; };
  for (Cut cut : {Cut{18, 0, 16}, Cut{16 + 4 + len0 / 2, 0, 16}, Cut{record1, 1, record1},
                  Cut{record1 + 10, 1, record1}, Cut{good.size() - 12, 3, good.size() - 12},
                  Cut{good.size() - 3, 3, good.size() - 12}}) {
    BOOST_TEST_CONTEXT("cut at " << cut.at) {
      FormatError e = read_error(good.substr(0, cut.at));
      BOOST_TEST(e.record() == cut.record);
      BOOST_TEST(e.offset() == cut.offset);
      BOOST_TEST(contains(e.what(), "truncated"));
      BOOST_TEST(contains(e.what(), "record " + std::to_string(cut.record) + " at byte offset"));
    }
  }
  // Truncated zstd stream: still an error, never a silent partial read.
  std::string z = bytes_of(da, Compression::Zstd);
  for (std::size_t at : {z.size() / 2, z.size() - 20}) {
    BOOST_TEST_CONTEXT("zstd cut at " << at) BOOST_CHECK_THROW(read_bytes(z.substr(0, at)), FormatError);
  }
}

BOOST_AUTO_TEST_CASE(corrupt_records_and_trailers) {
  DocumentArray da = sample(2);
  std::string good = bytes_of(da);
  std::uint32_t len0;
  std::memcpy(&len0, good.data() + 16, 4);

  std::string garbage = good;
  for (std::size_t i = 20; i < 20 + 8; ++i) garbage[i] = '\xc1';  // 0xc1 is never valid msgpack
  FormatError e = read_error(garbage);
  BOOST_TEST(e.record() == 0);
  BOOST_TEST(e.offset() == 16u);
  BOOST_TEST(contains(e.what(), "corrupt record"));

  std::string trailing = good + "xyz";
  e = read_error(trailing);
  BOOST_TEST(contains(e.what(), "unexpected bytes after the end marker"));

  std::string wrong_count = good;
  wrong_count[good.size() - 8] = 7;
  e = read_error(wrong_count);
  BOOST_TEST(contains(e.what(), "end marker says 7 records, 2 were read"));

  std::string huge_length = good;
  std::uint32_t big = 0xFFFFFFF0u;
  std::memcpy(&huge_length[16], &big, 4);
  e = read_error(huge_length);
  BOOST_TEST(contains(e.what(), "truncated"));

  // A valid msgpack map with a field we do not know.
  msgpack::sbuffer sb;
  msgpack::packer<msgpack::sbuffer> pk(sb);
  pk.pack_map(2);
  pk.pack(std::string("id"));
  pk.pack(std::string("abc"));
  pk.pack(std::string("colour"));
  pk.pack(std::string("red"));
  std::string rec = good.substr(0, 16);
  std::uint32_t n = static_cast<std::uint32_t>(sb.size());
  rec.append(reinterpret_cast<const char*>(&n), 4);
  rec.append(sb.data(), sb.size());
  e = read_error(rec);
  BOOST_TEST(contains(e.what(), "field 'colour': unknown field"));

  // A tensor whose bytes do not match its shape.
  sb.clear();
  pk.pack_map(2);
  pk.pack(std::string("id"));
  pk.pack(std::string("abc"));
  pk.pack(std::string("tensor"));
  pk.pack_map(3);
  pk.pack(std::string("dtype"));
  pk.pack(std::string("float32"));
  pk.pack(std::string("shape"));
  pk.pack(std::vector<int>{2, 2});
  pk.pack(std::string("data"));
  pk.pack_bin(4);
  pk.pack_bin_body("abcd", 4);
  rec = good.substr(0, 16);
  n = static_cast<std::uint32_t>(sb.size());
  rec.append(reinterpret_cast<const char*>(&n), 4);
  rec.append(sb.data(), sb.size());
  e = read_error(rec);
  BOOST_TEST(contains(e.what(), "tensor.data': holds 4 bytes, shape and dtype need 16"));

  std::string z = bytes_of(da, Compression::Zstd);
  z[z.size() / 2] ^= 0x5A;
  BOOST_CHECK_THROW(read_bytes(z), FormatError);
}

BOOST_AUTO_TEST_CASE(streams_many_documents_one_at_a_time) {
  TempDir dir;
  const std::string path = dir.file("many.docs");
  {
    docarray::BinaryWriter w(path, Compression::Zstd);
    for (int i = 0; i < 2000; ++i) {
      Document d(std::to_string(i));
      d.embedding = at::full({16}, static_cast<float>(i));
      w.write(d);
    }
    w.close();
    BOOST_TEST(w.count() == 2000u);
  }
  docarray::BinaryReader r(path);
  Document d{std::string()};
  int i = 0;
  while (r.next(d)) {
    BOOST_REQUIRE(d.id == std::to_string(i));
    BOOST_REQUIRE(d.embedding[3].item<float>() == static_cast<float>(i));
    ++i;
  }
  BOOST_TEST(i == 2000);
  BOOST_TEST(!r.next(d));
}

BOOST_AUTO_TEST_SUITE_END()
