// The file reader's direct decoder against the general one (msgpack-c's
// object tree), on the same record bytes: where the direct one answers, the
// two must give the same document; where the general one refuses a record,
// the direct one must have given up. White-box: the decoders are internal to
// docarray, so this includes their header from the source tree.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <msgpack.hpp>

#include <optional>
#include <string>
#include <vector>

#include "../../docarray/src/direct_decoder.hpp"
#include "../../docarray/src/msgpack_codec.hpp"
#include "docarray/document.hpp"
#include "docarray/error.hpp"
#include "sample_documents.hpp"

using docarray::Document;
using docarray::Value;

namespace {

std::string record_of(const Document& d) {
  msgpack::vrefbuffer buf;
  std::vector<at::Tensor> keepalive;
  docarray::detail::pack_document(buf, d, keepalive);
  std::string out;
  for (std::size_t i = 0; i < buf.vector_size(); ++i)
    out.append(static_cast<const char*>(buf.vector()[i].iov_base), buf.vector()[i].iov_len);
  return out;
}

std::optional<Document> direct(const std::string& bytes) {
  Document d{std::string()};
  if (!docarray::detail::decode_record_directly(bytes.data(), bytes.size(), d, nullptr)) return std::nullopt;
  return d;
}

// The general path as the reader takes it: the whole record must be one
// document within msgpack-c's limits. nullopt: refused (any exception).
std::optional<Document> general(const std::string& bytes) {
  try {
    msgpack::zone zone;
    std::size_t off = 0;
    auto ref = [](msgpack::type::object_type t, std::size_t, void*) {
      return t == msgpack::type::BIN || t == msgpack::type::STR;
    };
    msgpack::object obj =
        msgpack::unpack(zone, bytes.data(), bytes.size(), off, ref, nullptr, docarray::detail::record_limits(bytes.size()));
    if (off != bytes.size()) return std::nullopt;
    return docarray::detail::unpack_document(obj);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// Documents of the kinds the direct decoder takes: every plain field, every
// scalar tag type, tensors of several dtypes and shapes (empty, 0-d).
std::vector<Document> plain_documents() {
  std::vector<Document> out;
  Document only_id{"just-an-id"};
  out.push_back(only_id);
  Document e;
  e.embedding = at::randn({512});
  out.push_back(e);
  Document all;
  all.text = "a grey jumper \xE2\x9C\x93";
  all.parent_id = "p-1";
  all.uri = "images/1.png";
  all.mime_type = "image/png";
  all.modality = "image";
  all.blob = std::string("\x00\x01\xff binary", 10);
  all.granularity = 2;
  all.adjacency = -3;
  all.weight = 0.75;
  all.tensor = at::arange(24, at::kLong).reshape({2, 3, 4});
  all.embedding = at::randn({7}, at::kDouble);
  all.tags["label"] = 3;
  all.tags["negative"] = -200000;
  all.tags["big"] = static_cast<long long>(9007199254740993LL);
  all.tags["ratio"] = 0.5;
  all.tags["one_as_double"] = 1.0;
  all.tags["name"] = "shirt";
  all.tags["yes"] = true;
  all.tags["no"] = false;
  all.tags["nothing"] = nullptr;
  out.push_back(all);
  for (auto dtype : {at::kHalf, at::kBFloat16, at::kByte, at::kChar, at::kShort, at::kInt, at::kBool}) {
    Document t;
    t.tensor = (at::rand({3, 5}) * 100).to(dtype);
    out.push_back(t);
  }
  Document zero_d;
  zero_d.embedding = at::scalar_tensor(2.5);
  out.push_back(zero_d);
  Document empty;
  empty.tensor = at::empty({0, 4});
  out.push_back(empty);
  Document long_text;
  long_text.text = std::string(70000, 'x');  // str32
  long_text.weight = 3;                      // an integral weight is still a float on the wire
  out.push_back(long_text);
  return out;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(direct_decoder)

BOOST_AUTO_TEST_CASE(plain_records_decode_directly_to_the_general_paths_document) {
  for (const Document& d : plain_documents()) {
    const std::string bytes = record_of(d);
    const auto fast = direct(bytes);
    BOOST_TEST_REQUIRE(fast.has_value(), "the direct decoder gave up on document " << d.id);
    const auto slow = general(bytes);
    BOOST_TEST_REQUIRE(slow.has_value());
    BOOST_TEST(docarray::equal(*fast, *slow), "document " << d.id);
    BOOST_TEST(docarray::equal(*fast, d), "document " << d.id);
  }
}

BOOST_AUTO_TEST_CASE(what_it_does_not_take_is_left_to_the_general_path) {
  std::vector<Document> others;
  others.push_back(docflow::testing::full_document(1));  // chunks, matches, scores, nested tags
  Document listed;
  listed.tags["list"] = Value::list({1, 2});
  others.push_back(listed);
  Document scored;
  scored.scores["cosine"].value = 0.5;
  others.push_back(scored);
  for (const Document& d : others) {
    const std::string bytes = record_of(d);
    BOOST_TEST(!direct(bytes).has_value());
    BOOST_TEST(general(bytes).has_value());
  }
  // Not a document at all, or an unknown field: the general path names it.
  BOOST_TEST(!direct(std::string("\x91\x01", 2)).has_value());
  BOOST_TEST(!direct(std::string("\x81\xa3new\x01", 6)).has_value());
  // A document without an id.
  BOOST_TEST(!direct(std::string("\x81\xa4text\xa1x", 8)).has_value());
}

// Every byte of every plain record changed three ways, and every prefix:
// the direct decoder never accepts what the general one refuses, and where
// both accept, they agree.
BOOST_AUTO_TEST_CASE(damaged_records_are_never_accepted_where_the_general_path_refuses) {
  std::size_t cases = 0, accepted = 0, refused = 0;
  auto check = [&](const std::string& bytes) {
    ++cases;
    const auto fast = direct(bytes);
    const auto slow = general(bytes);
    if (fast) {
      ++accepted;
      BOOST_TEST_REQUIRE(slow.has_value(), "accepted a record the general path refuses (case " << cases << ")");
      BOOST_TEST_REQUIRE(docarray::equal(*fast, *slow), "case " << cases);
    } else if (!slow) {
      ++refused;
    }
  };
  for (const Document& d : plain_documents()) {
    const std::string bytes = record_of(d);
    if (bytes.size() > 4096) continue;  // the long text: its prefixes are many and alike
    for (std::size_t i = 0; i < bytes.size(); ++i) {
      for (unsigned char x : {0x01, 0x80, 0xff}) {
        std::string damaged = bytes;
        damaged[i] = static_cast<char>(damaged[i] ^ x);
        check(damaged);
      }
      check(bytes.substr(0, i));
    }
  }
  BOOST_TEST_MESSAGE(cases << " damaged records: " << accepted << " decoded directly, " << refused << " refused by both");
  BOOST_TEST(accepted > 0);  // some damage leaves a valid document (a changed tensor byte)
  BOOST_TEST(refused > cases / 4);
}

BOOST_AUTO_TEST_SUITE_END()
