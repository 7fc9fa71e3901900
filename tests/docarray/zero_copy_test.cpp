// Version-2 document files read by path: tensors alias the mapped file
// (aligned payloads, one storage, no copy), outlive the reader, stay private
// when written in place, and every kind of damage reads exactly as it does
// from a stream. Version-1 files, written by the docflow of before, still read.
#include <ATen/ATen.h>
#include <boost/test/unit_test.hpp>

#include <cstring>
#include <filesystem>
#include <streambuf>
#include <fstream>
#include <sstream>

#include "../support/file_bytes.hpp"
#include "../support/temp_dir.hpp"
#include "docarray/binary_io.hpp"
#include "docarray/document_file.hpp"
#include "docarray/error.hpp"
#include "docarray/jsonl_io.hpp"
#include "docarray/match.hpp"
#include "sample_documents.hpp"

using docarray::Compression;
using docarray::Document;
using docarray::DocumentArray;
using docarray::FormatError;
using docflow::testing::TempDir;

using docflow::testing::file_bytes;

namespace {

DocumentArray embeddings(int n, int dim) {
  DocumentArray da;
  for (int i = 0; i < n; ++i) {
    Document d;
    d.embedding = at::randn({dim});
    d.text = std::string(static_cast<std::size_t>(i % 7), 'x');  // records of different lengths
    if (i % 3 == 0) {
      Document chunk;
      chunk.tensor = at::randint(0, 100, {i % 5 + 17}, at::kLong);
      d.add_chunk(chunk);
    }
    da.append(d);
  }
  return da;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

// The error that reading what `open` opens gives, or "" when it reads.
template <typename Open>
std::string error_reading(Open open) {
  try {
    docarray::BinaryReader r = open();
    Document d{std::string()};
    while (r.next(d)) {
    }
  } catch (const FormatError& e) {
    return std::to_string(e.record()) + "@" + std::to_string(e.offset()) + ": " + e.what();
  }
  return "";
}

}  // namespace

BOOST_AUTO_TEST_SUITE(zero_copy)

BOOST_AUTO_TEST_CASE(tensors_read_by_path_alias_one_aligned_mapping) {
  TempDir dir;
  const DocumentArray da = embeddings(50, 100);
  docarray::save_binary(da, dir.file("a.docs"));
  const DocumentArray back = docarray::load_binary(dir.file("a.docs"));
  BOOST_REQUIRE(docarray::equal(da, back));
  const void* storage = back[0].embedding.storage().data();
  for (std::size_t i = 0; i < back.size(); ++i) {
    BOOST_TEST_CONTEXT("document " << i) {
      const at::Tensor& e = back[i].embedding;
      BOOST_TEST(e.storage().data() == storage);  // one storage: the file's
      BOOST_TEST(reinterpret_cast<std::uintptr_t>(e.data_ptr()) % 64 == 0u);
      BOOST_TEST(e.is_contiguous());
      if (i % 3 == 0) {
        const at::Tensor& t = back[i].chunks[0].tensor;  // nested documents alias too
        BOOST_TEST(t.storage().data() == storage);
        BOOST_TEST(reinterpret_cast<std::uintptr_t>(t.data_ptr()) % 64 == 0u);
      }
    }
  }
  // Through a stream, or compressed, every tensor has its own memory.
  std::istringstream in(file_bytes(dir.file("a.docs")));
  docarray::BinaryReader r(in);
  Document d{std::string()};
  BOOST_REQUIRE(r.next(d));
  BOOST_TEST(d.embedding.storage().data() != storage);
  BOOST_TEST(r.version() == 2);
  docarray::save_binary(da, dir.file("z.docs"), Compression::Zstd);
  const DocumentArray unzipped = docarray::load_binary(dir.file("z.docs"));
  BOOST_TEST(docarray::equal(da, unzipped));
  BOOST_TEST(unzipped[0].embedding.storage().data() != unzipped[1].embedding.storage().data());
}

BOOST_AUTO_TEST_CASE(documents_outlive_their_reader_and_file) {
  TempDir dir;
  const DocumentArray da = embeddings(20, 64);
  docarray::save_binary(da, dir.file("gone.docs"));
  DocumentArray back;
  {
    docarray::BinaryReader r(dir.file("gone.docs"));
    Document d{std::string()};
    while (r.next(d)) back.append(std::move(d));
  }
  std::filesystem::remove(dir.file("gone.docs"));  // the mapping keeps the bytes
  BOOST_TEST(docarray::equal(da, back));
  DocumentArray copy = back;  // copies share the mapping; the last one releases it
  back = DocumentArray();
  BOOST_TEST(docarray::equal(da, copy));
}

BOOST_AUTO_TEST_CASE(a_tensor_changed_in_place_changes_neither_the_file_nor_its_neighbours) {
  TempDir dir;
  const DocumentArray da = embeddings(4, 32);
  docarray::save_binary(da, dir.file("a.docs"));
  const std::string before = file_bytes(dir.file("a.docs"));
  DocumentArray back = docarray::load_binary(dir.file("a.docs"));
  back[1].embedding.mul_(2);
  BOOST_TEST(at::allclose(back[1].embedding, da[1].embedding * 2));
  BOOST_TEST(at::equal(back[0].embedding, da[0].embedding));
  BOOST_TEST(at::equal(back[2].embedding, da[2].embedding));
  BOOST_TEST(file_bytes(dir.file("a.docs")) == before);
  BOOST_TEST(docarray::equal(docarray::load_binary(dir.file("a.docs")), da));
}

BOOST_AUTO_TEST_CASE(documents_read_from_a_file_can_be_saved_back_to_it) {
  // Load, change, save to the same path: the new file is written beside the
  // old one and renamed over it, so the tensors aliasing the old one never
  // see it truncated under them.
  TempDir dir;
  const std::string path = dir.file("same.docs");
  docarray::save_binary(embeddings(300, 128), path);
  std::filesystem::permissions(path, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  DocumentArray docs = docarray::load_binary(path);
  const DocumentArray before = docs;
  for (auto& d : docs) d.tags["seen"] = true;
  docarray::save_binary(docs, path);
  const DocumentArray back = docarray::load_binary(path);
  BOOST_TEST(docarray::equal(back, docs));
  BOOST_TEST(docarray::equal(before[299], docs[299]) == false);
  BOOST_TEST(at::equal(before[299].embedding, back[299].embedding));  // the old mapping still reads
  BOOST_TEST(static_cast<int>(std::filesystem::status(path).permissions() & std::filesystem::perms::all) ==
             static_cast<int>(std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));  // kept
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    BOOST_TEST(e.path().filename().string().find("partial") == std::string::npos, e.path());
}

BOOST_AUTO_TEST_CASE(a_write_that_fails_says_why) {
  // /dev/full: a device, so written in place, and always full.
  auto check = [](const docarray::Error& e) {
    BOOST_TEST(std::string(e.what()).find("cannot write /dev/full: No space left on device") != std::string::npos, e.what());
  };
  try {
    docarray::BinaryWriter w("/dev/full");  // the header is written at once
    BOOST_FAIL("opening /dev/full for writing succeeded");
  } catch (const docarray::Error& e) {
    check(e);
  }
  try {
    docarray::save_binary(embeddings(2000, 512), "/dev/full", Compression::Zstd);
    BOOST_FAIL("writing to /dev/full succeeded");
  } catch (const docarray::Error& e) {
    check(e);
  }
}

// A stream that takes `room` bytes and then fails, as a disk fills up.
class FillingStreambuf : public std::streambuf {
 public:
  explicit FillingStreambuf(std::size_t room) : room_(room) {}

 protected:
  std::streamsize xsputn(const char*, std::streamsize n) override {
    const auto take = std::min<std::streamsize>(n, static_cast<std::streamsize>(room_));
    room_ -= static_cast<std::size_t>(take);
    return take;
  }
  int_type overflow(int_type c) override { return room_ > 0 && c != traits_type::eof() ? (--room_, c) : traits_type::eof(); }

 private:
  std::size_t room_;
};

BOOST_AUTO_TEST_CASE(a_writer_refuses_more_after_a_failed_write) {
  // Batches queued behind the one that failed are dropped unwritten; what
  // comes after them must not reach the stream as if they had been written.
  FillingStreambuf room(3 << 20);
  std::ostream out(&room);
  docarray::BinaryWriter w(out, Compression::None, "filling.docs");
  BOOST_CHECK_THROW(w.write(embeddings(20000, 512)), docarray::Error);  // 41 MB into 3
  try {
    w.write(embeddings(10, 512));
    BOOST_FAIL("a write after a failed one was taken");
  } catch (const docarray::Error& e) {
    BOOST_TEST(std::string(e.what()).find("filling.docs after a failed write") != std::string::npos, e.what());
  }
  BOOST_CHECK_THROW(w.close(), docarray::Error);
}

BOOST_AUTO_TEST_CASE(write_of_one_document_takes_its_bytes_at_once) {
  // write(doc) copies: a caller that refills one tensor for every document
  // (a decoder loop) gets every version in the file.
  TempDir dir;
  Document d;
  d.embedding = at::zeros({256});
  {
    docarray::BinaryWriter w(dir.file("loop.docs"));
    for (int i = 0; i < 600; ++i) {  // more than one gathered batch
      d.embedding.fill_(i);
      d.id = std::to_string(i);
      w.write(d);
    }
    w.close();
  }
  const DocumentArray back = docarray::load_binary(dir.file("loop.docs"));
  BOOST_REQUIRE(back.size() == 600u);
  for (int i = 0; i < 600; i += 37) BOOST_TEST(back[i].embedding[255].item<float>() == static_cast<float>(i));
}

BOOST_AUTO_TEST_CASE(arrays_write_in_gathered_batches_and_read_back_exactly) {
  TempDir dir;
  DocumentArray da = embeddings(6000, 700);  // 20 MB: three batches of up to 8 MB, written while the next is packed
  da[3] = docflow::testing::full_document(3);
  // Payloads under 1 MiB are copied into the batch, larger ones written
  // where they lie: both kinds in one batch, and one at the very end.
  da[100].tensor = at::randn({300'000});
  da[101].embedding = at::randn({1 << 18});  // exactly 1 MiB: referenced
  da[5999].tensor = at::randn({400'000});
  for (Compression c : {Compression::None, Compression::Zstd}) {
    docarray::save_binary(da, dir.file("many.docs"), c);
    BOOST_TEST(docarray::equal(docarray::load_binary(dir.file("many.docs")), da));
    std::istringstream in(file_bytes(dir.file("many.docs")));
    docarray::BinaryReader r(in);
    DocumentArray streamed;
    Document d{std::string()};
    while (r.next(d)) streamed.append(d);
    BOOST_TEST(docarray::equal(streamed, da));
  }
}

BOOST_AUTO_TEST_CASE(damage_reads_the_same_from_a_mapped_file_as_from_a_stream) {
  TempDir dir;
  DocumentArray da = embeddings(3, 40);
  da.append(docflow::testing::full_document(1));
  docarray::save_binary(da, dir.file("good.docs"));
  const std::string good = file_bytes(dir.file("good.docs"));
  std::vector<std::string> damaged;
  for (std::size_t cut : {std::size_t{0}, std::size_t{5}, std::size_t{12}, std::size_t{18}, good.size() / 3,
                          good.size() / 2, good.size() - 12, good.size() - 3})
    damaged.push_back(good.substr(0, cut));
  for (std::size_t at : {std::size_t{9}, std::size_t{22}, std::size_t{60}, good.size() / 2, good.size() - 8}) {
    std::string flipped = good;
    flipped[at] = static_cast<char>(flipped[at] ^ 0xA5);
    damaged.push_back(flipped);
  }
  damaged.push_back(good + "x");
  int errors = 0;
  for (std::size_t i = 0; i < damaged.size(); ++i) {
    BOOST_TEST_CONTEXT("damage " << i << " (" << damaged[i].size() << " bytes)") {
      write_file(dir.file("bad.docs"), damaged[i]);
      const std::string mapped = error_reading([&] { return docarray::BinaryReader(dir.file("bad.docs")); });
      std::istringstream in(damaged[i]);
      const std::string streamed = error_reading([&] { return docarray::BinaryReader(in, dir.file("bad.docs")); });
      BOOST_TEST(mapped == streamed);
      errors += !mapped.empty();
    }
  }
  BOOST_TEST(errors >= 12);  // all but flips inside payload bytes are caught
}

// Where each record's bytes start (just after its length) in a well-formed file.
std::vector<std::size_t> record_starts(const std::string& file) {
  std::vector<std::size_t> starts;
  std::size_t at = 16;
  for (;;) {
    std::uint32_t len;
    std::memcpy(&len, file.data() + at, 4);
    if (len == 0) return starts;
    starts.push_back(at + 4);
    at += 4 + len;
  }
}

BOOST_AUTO_TEST_CASE(a_file_read_whole_decodes_on_threads_with_the_errors_of_one_at_a_time) {
  TempDir dir;
  const DocumentArray da = embeddings(20'000, 8);  // enough records for two threads and more
  docarray::save_binary(da, dir.file("good.docs"));
  BOOST_TEST(docarray::equal(docarray::load_binary(dir.file("good.docs")), da));
  BOOST_TEST(docarray::equal(docarray::load_documents(dir.file("good.docs")), da));

  const std::string good = file_bytes(dir.file("good.docs"));
  const std::vector<std::size_t> starts = record_starts(good);
  BOOST_REQUIRE_EQUAL(starts.size(), 20'000u);
  // 0xc1 is the one byte msgpack never uses: the record cannot decode.
  auto broken_at = [&](std::initializer_list<std::size_t> records) {
    std::string bad = good;
    for (std::size_t r : records) bad[starts[r]] = static_cast<char>(0xc1);
    return bad;
  };
  std::string cut_length = good;  // a length in the second half that runs past the end
  const std::uint32_t huge = 0x7fffffff;
  std::memcpy(&cut_length[starts[15'000] - 4], &huge, 4);
  std::string count_over = good, count_under = good;  // the end marker's count, one off either way
  count_over[good.size() - 8] = static_cast<char>(count_over[good.size() - 8] + 1);
  count_under[good.size() - 8] = static_cast<char>(count_under[good.size() - 8] - 1);
  const std::vector<std::pair<std::string, std::size_t>> damaged = {
      {broken_at({3}), 3},           {broken_at({12'345}), 12'345}, {broken_at({19'999}), 19'999},
      {broken_at({15'000, 2'000}), 2'000}, {cut_length, 15'000}, {count_over, 20'000}, {count_under, 20'000},
      {good + "x", 20'000}};
  for (std::size_t i = 0; i < damaged.size(); ++i) {
    BOOST_TEST_CONTEXT("damage " << i) {
      const auto& [bytes, faulty] = damaged[i];
      write_file(dir.file("bad.docs"), bytes);
      std::istringstream in(bytes);
      const std::string one_at_a_time = error_reading([&] { return docarray::BinaryReader(in, dir.file("bad.docs")); });
      BOOST_TEST(!one_at_a_time.empty());
      docarray::BinaryReader whole(dir.file("bad.docs"));
      DocumentArray read;
      std::string error;
      try {
        whole.append_all(read);
      } catch (const FormatError& e) {
        error = std::to_string(e.record()) + "@" + std::to_string(e.offset()) + ": " + e.what();
      }
      BOOST_TEST(error == one_at_a_time);
      // What came before the fault was read, exactly.
      BOOST_REQUIRE_EQUAL(read.size(), faulty);
      for (std::size_t d = 0; d < read.size(); d += 997) BOOST_TEST(docarray::equal(read[d], da[d]));
    }
  }
}

BOOST_AUTO_TEST_CASE(an_index_read_from_a_file_is_matched_without_gathering_its_rows) {
  TempDir dir;
  DocumentArray index;
  for (int i = 0; i < 3000; ++i) {  // one layout: id and embedding
    Document d;
    d.embedding = at::randn({96});
    index.append(d);
  }
  docarray::save_binary(index, dir.file("index.docs"));
  const DocumentArray mapped = docarray::load_binary(dir.file("index.docs"));
  const at::Tensor rows = docarray::embeddings_in_place(mapped);
  BOOST_REQUIRE(rows.defined());
  BOOST_TEST(rows.data_ptr() == mapped[0].embedding.data_ptr());  // the file's bytes, not a copy
  BOOST_TEST(rows.stride(1) == 1);
  BOOST_TEST(rows.stride(0) >= 96);
  std::vector<at::Tensor> each;
  for (const auto& d : index) each.push_back(d.embedding);
  BOOST_TEST(at::equal(rows, at::stack(each)));
  BOOST_TEST(!docarray::embeddings_in_place(index).defined());  // rows of separate tensors
  // Same matches, same order, same scores as the index in memory, for every metric.
  for (const char* metric : {"cosine", "euclidean", "dot"}) {
    BOOST_TEST_CONTEXT(metric) {
      DocumentArray q1, q2;
      for (int i = 0; i < 20; ++i) {
        Document q;
        q.embedding = at::randn({96});
        q1.append(q);
        q2.append(q);
      }
      docarray::MatchOptions o;
      o.metric = metric;
      o.limit = 7;
      o.batch_size = 1000;  // blocks of the strided matrix
      docarray::match(q1, index, o);
      docarray::match(q2, mapped, o);
      for (int i = 0; i < 20; ++i)
        for (std::size_t k = 0; k < 7; ++k) {
          BOOST_TEST(q1[i].matches[k].id == q2[i].matches[k].id);
          BOOST_TEST(q1[i].matches[k].scores[metric].value == q2[i].matches[k].scores[metric].value,
                     boost::test_tools::tolerance(1e-5));
        }
    }
  }
  // A few more bytes in one record are absorbed by the padding...
  DocumentArray mixed = index;
  mixed[1500].text = "a caption";
  docarray::save_binary(mixed, dir.file("mixed.docs"));
  BOOST_TEST(docarray::embeddings_in_place(docarray::load_binary(dir.file("mixed.docs"))).defined());
  // ...a record of another size in the middle is not: rows are gathered as before.
  mixed[1500].text = std::string(200, 'c');
  docarray::save_binary(mixed, dir.file("mixed.docs"));
  BOOST_TEST(!docarray::embeddings_in_place(docarray::load_binary(dir.file("mixed.docs"))).defined());
}

BOOST_AUTO_TEST_CASE(version_1_files_from_the_earlier_writer_still_read) {
  // Written by docflow's version-1 writer (2026-12-02): no payload padding.
  const std::string data = DOCARRAY_TEST_DATA;
  docarray::BinaryReader r(data + "/version1.docs");
  BOOST_TEST(r.version() == 1);
  DocumentArray v1;
  Document d{std::string()};
  while (r.next(d)) v1.append(d);
  const DocumentArray expected = docarray::load_jsonl(data + "/version1.jsonl");
  BOOST_REQUIRE(v1.size() == 3u);
  BOOST_TEST(docarray::equal(v1, expected));
  BOOST_TEST(v1[1].embedding.numel() == 600);
}

BOOST_AUTO_TEST_SUITE_END()
