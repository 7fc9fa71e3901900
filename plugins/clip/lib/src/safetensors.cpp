#include "clip/safetensors.hpp"

#include <ATen/ops/from_blob.h>

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <set>

#include "clip/error.hpp"
#include "docarray/limits.hpp"

namespace clip {
namespace {


const std::pair<const char*, at::ScalarType> kDtypes[] = {
    {"F32", at::kFloat}, {"F16", at::kHalf}, {"BF16", at::kBFloat16}, {"F64", at::kDouble},
    {"I64", at::kLong},  {"I32", at::kInt},  {"I16", at::kShort},     {"I8", at::kChar},
    {"U8", at::kByte},   {"BOOL", at::kBool}};

struct Mapping {
  void* data = MAP_FAILED;
  std::size_t size = 0;
  ~Mapping() {
    if (data != MAP_FAILED) ::munmap(data, size);
  }
};

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(path + ": not a valid safetensors file: " + what);
}

}  // namespace

SafetensorsFile read_safetensors(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  ::fstat(fd, &st);
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<std::size_t>(st.st_size);
  if (map->size < 8) {
    ::close(fd);
    bad(path, "the file has " + std::to_string(map->size) + " bytes, fewer than the 8-byte header length");
  }
  map->data = ::mmap(nullptr, map->size, PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map->data == MAP_FAILED) throw Error("cannot map " + path + ": " + std::strerror(errno));
  const char* base = static_cast<const char*>(map->data);

  std::uint64_t header_len;
  std::memcpy(&header_len, base, 8);
  if (header_len > docarray::limits().model_header_bytes)
    bad(path, "header length " + std::to_string(header_len) + " exceeds " + docarray::limit_hint("model_header_bytes"));
  if (8 + header_len > map->size)
    bad(path, "header length " + std::to_string(header_len) + " runs past the end of the file (truncated?)");

  // Duplicate names are an error, though JSON parsers keep the last one.
  std::set<std::string> seen;
  std::string duplicate;
  const int max_depth = static_cast<int>(docarray::limits().depth);
  auto on_event = [&](int depth, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    if (depth > max_depth) throw Error("nested deeper than " + docarray::limit_hint("depth"));
    if (depth == 1 && event == nlohmann::json::parse_event_t::key) {
      std::string key = parsed.get<std::string>();
      if (!seen.insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_len, on_event);
  } catch (const std::exception& e) {
    bad(path, std::string("header is not JSON: ") + e.what());
  }
  if (!duplicate.empty()) bad(path, "tensor '" + duplicate + "' appears twice in the header");
  if (!header.is_object()) bad(path, "header is not a JSON object");

  const std::uint64_t data_start = 8 + header_len, data_size = map->size - data_start;
  SafetensorsFile out;
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> spans;
  for (const auto& [name, info] : header.items()) {
    if (name == "__metadata__") {
      if (!info.is_object()) bad(path, "__metadata__ is not an object");
      for (const auto& [k, v] : info.items()) out.metadata[k] = v.is_string() ? v.get<std::string>() : v.dump();
      continue;
    }
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") || !info.contains("data_offsets"))
      bad(path, "tensor '" + name + "' needs dtype, shape and data_offsets");
    const std::string dtype = info["dtype"].is_string() ? info["dtype"].get<std::string>() : "";
    auto dt = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](auto& d) { return dtype == d.first; });
    if (dt == std::end(kDtypes)) bad(path, "tensor '" + name + "' has unsupported dtype '" + info["dtype"].dump() + "'");
    std::vector<std::int64_t> shape;
    std::uint64_t numel = 1;
    for (const auto& s : info["shape"]) {
      if (!s.is_number_integer() || s.get<std::int64_t>() < 0) bad(path, "tensor '" + name + "' has a bad shape");
      shape.push_back(s.get<std::int64_t>());
      if (__builtin_mul_overflow(numel, static_cast<std::uint64_t>(shape.back()), &numel) || numel > data_size)
        bad(path, "tensor '" + name + "' has a shape of more elements than the file has bytes");
    }
    const auto& offsets = info["data_offsets"];
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned())
      bad(path, "tensor '" + name + "' has bad data_offsets " + offsets.dump());
    std::uint64_t begin = offsets[0].get<std::uint64_t>(), end = offsets[1].get<std::uint64_t>();
    if (begin > end || end > data_size)
      bad(path, "tensor '" + name + "' data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                    "] are outside the " + std::to_string(data_size) + "-byte data (truncated?)");
    const std::uint64_t need = numel * at::elementSize(dt->second);
    if (end - begin != need)
      bad(path, "tensor '" + name + "' holds " + std::to_string(end - begin) + " bytes, its dtype and shape need " +
                    std::to_string(need));
    spans.emplace_back(begin, end, name);
    // A view into the mapping; the deleter keeps the mapping alive.
    void* ptr = const_cast<char*>(base + data_start + begin);
    out.tensors[name] = at::from_blob(ptr, shape, [map](void*) {}, at::TensorOptions().dtype(dt->second));
  }
  std::sort(spans.begin(), spans.end());
  std::uint64_t expected = 0;
  for (const auto& [begin, end, name] : spans) {
    if (begin != expected)
      bad(path, "tensor '" + name + "' starts at byte " + std::to_string(begin) + ", expected " + std::to_string(expected) +
                    " (tensors must tile the data without gaps or overlaps)");
    expected = end;
  }
  if (expected != data_size)
    bad(path, std::to_string(data_size - expected) + " bytes after the last tensor are not described by the header");
  return out;
}

void write_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> data;
  std::uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    at::Tensor c = t.detach().to(at::kCPU).contiguous();
    auto dt = std::find_if(std::begin(kDtypes), std::end(kDtypes), [&](auto& d) { return d.second == c.scalar_type(); });
    if (dt == std::end(kDtypes)) throw Error("cannot write tensor '" + name + "' of dtype " + std::string(c.dtype().name()));
    const std::uint64_t n = static_cast<std::uint64_t>(c.numel()) * c.element_size();
    header[name] = {{"dtype", dt->first}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + n}}};
    offset += n;
    data.push_back(c);
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error("cannot write " + path);
  std::uint64_t len = text.size();
  f.write(reinterpret_cast<const char*>(&len), 8);
  f.write(text.data(), static_cast<std::streamsize>(text.size()));
  for (const auto& c : data) f.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
  f.close();
  if (!f) throw Error("cannot write " + path + " (disk full?)");
}

}  // namespace clip
