// Document files made by an attacker: every one fails with an error naming
// the file and record or line, at once and without allocating what the
// bytes merely declare. Records are written by hand, byte for byte, as a
// fuzzer would write them.
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <cstring>
#include <fstream>

#include "../support/temp_dir.hpp"
#include "docarray/document_file.hpp"
#include "docarray/error.hpp"
#include "docarray/limits.hpp"
#include "docarray/utf8.hpp"

using docflow::testing::TempDir;

namespace {

std::string str(const std::string& s) { return std::string(1, static_cast<char>(0xa0 | s.size())) + s; }

// A binary document file holding `records` (each msgpack bytes).
std::string binary_file(const std::vector<std::string>& records) {
  std::string out = "DFDOCS\r\n";
  out += std::string("\x01\x00\x00\x00\x00\x00\x00\x00", 8);
  for (const auto& r : records) {
    std::uint32_t n = static_cast<std::uint32_t>(r.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += r;
  }
  std::uint32_t zero = 0;
  std::uint64_t count = records.size();
  out.append(reinterpret_cast<const char*>(&zero), 4);
  out.append(reinterpret_cast<const char*>(&count), 8);
  return out;
}

// The error reading `bytes` as a file named `name` gives, or "" when it reads.
std::string read_error(const TempDir& dir, const std::string& name, const std::string& bytes) {
  std::string path = dir.file(name);
  std::ofstream(path, std::ios::binary) << bytes;
  try {
    docarray::load_documents(path);
  } catch (const docarray::Error& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// {"id": "a", "chunks": [ ...depth times... ]}
std::string nested_record(int depth) {
  // Every level is the same prefix before the innermost document: repeated,
  // not prepended (prepending is quadratic: minutes at depth 100,000 under ASan).
  const std::string level = std::string(1, '\x82') + str("id") + str("a") + str("chunks") + "\x91";
  std::string record;
  record.reserve(level.size() * depth + 16);
  for (int i = 0; i < depth; ++i) record += level;
  return record + std::string(1, '\x81') + str("id") + str("a");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(hostile_input)

BOOST_AUTO_TEST_CASE(declared_sizes_are_checked_before_anything_is_allocated) {
  TempDir dir;
  auto t0 = std::chrono::steady_clock::now();
  // An array that says it holds 4 billion documents, in a 24-byte record.
  std::string bomb = std::string(1, '\x82') + str("id") + str("a") + str("chunks") + std::string("\xdd\xff\xff\xff\xff", 5);
  std::string e = read_error(dir, "bomb.docs", binary_file({bomb}));
  BOOST_TEST(contains(e, dir.file("bomb.docs") + ": record 0 at byte offset 16: corrupt record"), e);
  BOOST_TEST(contains(e, "declares more elements than the record's"), e);
  // A tensor of 10^18 float32 elements with no data.
  std::string shape = std::string(1, '\x82') + str("id") + str("a") + str("embedding") + "\x83" + str("dtype") +
                      str("float32") + str("shape") + "\x92" + std::string("\xce\x3b\x9a\xca\x00", 5) + std::string("\xce\x3b\x9a\xca\x00", 5) +
                      str("data") + std::string("\xc4\x00", 2);
  e = read_error(dir, "shape.docs", binary_file({shape}));
  BOOST_TEST(contains(e, "field 'embedding.shape': has more elements than the tensor_elements limit"), e);
  // Within the limit, but not what the bytes hold.
  std::string small = std::string(1, '\x82') + str("id") + str("a") + str("embedding") + "\x83" + str("dtype") +
                      str("float32") + str("shape") + "\x91" + std::string("\xcd\x10\x00", 3) + str("data") + std::string("\xc4\x04", 2) + "abcd";
  e = read_error(dir, "small.docs", binary_file({small}));
  BOOST_TEST(contains(e, "field 'embedding.data': holds 4 bytes, shape and dtype need 16384"), e);
  BOOST_TEST((std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)));
}

BOOST_AUTO_TEST_CASE(nesting_is_bounded_in_both_formats_and_the_limit_can_be_raised) {
  TempDir dir;
  BOOST_TEST(read_error(dir, "ok.docs", binary_file({nested_record(60)})) == "");
  std::string e = read_error(dir, "deep.docs", binary_file({nested_record(100000)}));
  BOOST_TEST(contains(e, "nested deeper than the depth limit (64; raise it with --input-limit depth=N)"), e);
  e = read_error(dir, "deep65.docs", binary_file({nested_record(65)}));
  BOOST_TEST(contains(e, "documents (chunks, matches) nested deeper than the depth limit"), e);
  // JSON Lines: chunks and tags.
  // Built in linear time (prepending 100,000 times copied gigabytes, minutes under ASan).
  std::string chunks;
  for (int i = 0; i < 100000; ++i) chunks += "{\"chunks\": [";
  chunks += "{\"id\": \"a\"}";
  for (int i = 0; i < 100000; ++i) chunks += "]}";
  e = read_error(dir, "deep.jsonl", "{\"id\": \"x\"}\n" + chunks + "\n");
  BOOST_TEST(contains(e, dir.file("deep.jsonl") + ":2: JSON nested deeper than the depth limit"), e);
  std::string tags = "1";
  for (int i = 0; i < 70; ++i) tags = "[" + tags + "]";
  e = read_error(dir, "tags.jsonl", "{\"tags\": {\"t\": " + tags + "}}\n");
  BOOST_TEST(contains(e, "tags.jsonl:1: field 'tags.t[0]"), e);
  BOOST_TEST(contains(e, "tag values nested deeper than the depth limit"), e);
  docarray::set_limit("depth=200");
  BOOST_TEST(read_error(dir, "tags.jsonl", "{\"tags\": {\"t\": " + tags + "}}\n") == "");
  BOOST_TEST(read_error(dir, "deep65.docs", binary_file({nested_record(65)})) == "");
  docarray::set_limit("depth=64");
  BOOST_CHECK_THROW(docarray::set_limit("depth=0"), docarray::Error);
  BOOST_CHECK_THROW(docarray::set_limit("depht=3"), docarray::Error);
}

BOOST_AUTO_TEST_CASE(numbers_utf8_and_empty_files_get_located_errors) {
  TempDir dir;
  std::string e = read_error(dir, "big.jsonl", "{\"id\": \"a\"}\n{\"weight\": 1e999}\n");
  BOOST_TEST(contains(e, "big.jsonl:2: a number is out of range"), e);
  e = read_error(dir, "shape.jsonl", "{\"tensor\": {\"dtype\": \"float32\", \"shape\": [4294967296, 4294967296, 4294967296], \"data\": []}}\n");
  BOOST_TEST(contains(e, "shape.jsonl:1: field 'tensor.shape': has more elements than"), e);
  // Invalid UTF-8 in a binary document's text, and an error that quotes it.
  std::string bad_text = std::string(1, '\x82') + str("id") + str("a") + str("text") + "\xa3" + "a\xff" + "b";
  e = read_error(dir, "utf8.docs", binary_file({bad_text}));
  BOOST_TEST(contains(e, "record 0 at byte offset 16: corrupt record: field 'text': is not valid UTF-8 (byte 1 of 3)"), e);
  BOOST_TEST((docarray::invalid_utf8_at(e) == std::string::npos));
  e = read_error(dir, "empty.docs", "");
  BOOST_TEST(contains(e, "empty.docs: header at byte offset 0: the file is empty"), e);
  BOOST_TEST(read_error(dir, "empty.jsonl", "") == "");
}

BOOST_AUTO_TEST_CASE(errors_keep_their_messages_valid_utf8) {
  BOOST_TEST(docarray::invalid_utf8_at("plain ascii") == std::string::npos);
  BOOST_TEST(docarray::invalid_utf8_at("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == std::string::npos);
  BOOST_TEST(docarray::invalid_utf8_at("\xc3") == 0u);            // cut in half
  BOOST_TEST(docarray::invalid_utf8_at("ab\xc0\xaf") == 2u);      // overlong '/'
  BOOST_TEST(docarray::invalid_utf8_at("\xed\xa0\x80") == 0u);    // a surrogate
  BOOST_TEST(docarray::invalid_utf8_at("\xf4\x90\x80\x80") == 0u);  // past U+10FFFF
  BOOST_TEST(docarray::escape_invalid_utf8("a\xffz\xc3\xa9") == "a\\xffz\xc3\xa9");
  docarray::Error e("token \xe2\x82 cut");
  BOOST_TEST(std::string(e.what()) == "token \\xe2\\x82 cut");
}

BOOST_AUTO_TEST_SUITE_END()
