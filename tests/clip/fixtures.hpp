#pragma once
// The reference fixtures in ../shared/fixtures/clip-tiny: tests that need them
// are skipped, with a message, where ../shared is absent.
#include <boost/test/unit_test.hpp>
#include <nlohmann/json.hpp>
// ATen's tensor and the two operators used here, not <torch/torch.h>: the
// tokenizer's tests include this and need no tensor library.
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/tensor.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

namespace docflow::testing {

inline std::string fixture_dir() { return std::string(DOCFLOW_SHARED_DIR) + "/fixtures/clip-tiny"; }
inline std::string vocab_file() { return std::string(DOCFLOW_SHARED_DIR) + "/data/clip/bpe_simple_vocab_16e6.txt.gz"; }

// Holds a std::string on purpose: Boost.Function copies a trivially copyable
// (e.g. empty) functor with a raw memcpy of its 24-byte buffer, which GCC 12
// reports as a read of uninitialised memory.
struct SharedFixtures {
  std::string root = DOCFLOW_SHARED_DIR;
  boost::test_tools::assertion_result operator()(boost::unit_test::test_unit_id) const {
    boost::test_tools::assertion_result ok(std::filesystem::exists(fixture_dir() + "/expected.json") &&
                                           std::filesystem::exists(vocab_file()));
    ok.message() << "skipped: the reference fixtures (" << fixture_dir() << ") are absent";
    return ok;
  }
};

inline nlohmann::json expected() {
  std::ifstream f(fixture_dir() + "/expected.json");
  return nlohmann::json::parse(f);
}

// A nested JSON list of numbers as a float tensor.
inline at::Tensor tensor_of(const nlohmann::json& j) {
  std::vector<std::int64_t> shape;
  const nlohmann::json* p = &j;
  while (p->is_array()) {
    shape.push_back(static_cast<std::int64_t>(p->size()));
    if (p->empty()) break;
    p = &(*p)[0];
  }
  std::vector<float> flat;
  std::function<void(const nlohmann::json&)> walk = [&](const nlohmann::json& x) {
    if (x.is_array())
      for (const auto& y : x) walk(y);
    else
      flat.push_back(x.get<float>());
  };
  walk(j);
  return at::tensor(flat).reshape(shape);
}

// max |a - b| / max(|b|) : relative to the reference's scale.
inline double relative_error(const at::Tensor& a, const at::Tensor& b) {
  return ((a - b).abs().max() / b.abs().max()).item<double>();
}

}  // namespace docflow::testing
