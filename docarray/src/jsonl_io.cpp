#include "docarray/jsonl_io.hpp"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <string_view>

#include "base64.hpp"
#include "docarray/dtype.hpp"
#include "docarray/envelope.hpp"
#include "docarray/error.hpp"
#include "docarray/limits.hpp"

namespace docarray {
namespace {

using Json = nlohmann::ordered_json;

[[noreturn]] void bad(const std::string& field, const std::string& what) {
  throw Error("field '" + field + "': " + what);
}

// --- to JSON ----------------------------------------------------------------
// Written by hand rather than through nlohmann::json so that numbers come out
// in their shortest exact form: a float32 0.1 reads "0.1", not
// "0.10000000149011612", and a double tag 1.0 stays "1.0" (a double).

void put_string(std::string& out, const std::string& s, const char* field) {
  try {
    out += Json(s).dump();
  } catch (const Json::type_error&) {
    bad(field, "is not valid UTF-8, which JSON cannot hold; use the binary format");
  }
}

template <typename F>
void put_float(std::string& out, F v) {
  if (std::isnan(v)) { out += "\"NaN\""; return; }
  if (std::isinf(v)) { out += v > 0 ? "\"Infinity\"" : "\"-Infinity\""; return; }
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
  out += text;
  if (text.find_first_of(".e") == std::string_view::npos) out += ".0";  // keep it a float
}

void put_value(std::string& out, const Value& v, const char* field) {
  switch (v.type()) {
    case Value::Type::Null: out += "null"; break;
    case Value::Type::Bool: out += v.as_bool() ? "true" : "false"; break;
    case Value::Type::Int: out += std::to_string(v.as_int()); break;
    case Value::Type::Double: put_float(out, v.as_double()); break;
    case Value::Type::String: put_string(out, v.as_string(), field); break;
    case Value::Type::List: {
      out += '[';
      bool first = true;
      for (const auto& item : v.as_list()) {
        if (!first) out += ',';
        first = false;
        put_value(out, item, field);
      }
      out += ']';
      break;
    }
    case Value::Type::Map: {
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.as_map()) {
        if (!first) out += ',';
        first = false;
        put_string(out, k, field);
        out += ':';
        put_value(out, item, field);
      }
      out += '}';
      break;
    }
  }
}

void put_tensor(std::string& out, const at::Tensor& t) {
  at::Tensor c = t.detach().to(at::kCPU).contiguous();
  out += "{\"dtype\":\"" + dtype_name(c.scalar_type()) + "\",\"shape\":[";
  for (std::int64_t i = 0; i < c.dim(); ++i) out += (i ? "," : "") + std::to_string(c.size(i));
  out += "],\"data\":[";
  const std::int64_t n = c.numel();
  switch (c.scalar_type()) {
    case at::kDouble: {
      const double* p = c.data_ptr<double>();
      for (std::int64_t i = 0; i < n; ++i) { if (i) out += ','; put_float(out, p[i]); }
      break;
    }
    case at::kFloat: case at::kHalf: case at::kBFloat16: {
      at::Tensor f = c.to(at::kFloat);
      const float* p = f.data_ptr<float>();
      for (std::int64_t i = 0; i < n; ++i) { if (i) out += ','; put_float(out, p[i]); }
      break;
    }
    case at::kBool: {
      const bool* p = c.data_ptr<bool>();
      for (std::int64_t i = 0; i < n; ++i) out += (i ? "," : "") + std::string(p[i] ? "true" : "false");
      break;
    }
    default: {
      at::Tensor l = c.to(at::kLong);
      const std::int64_t* p = l.data_ptr<std::int64_t>();
      for (std::int64_t i = 0; i < n; ++i) out += (i ? "," : "") + std::to_string(p[i]);
    }
  }
  out += "]}";
}

void put_scores(std::string& out, const Scores& scores, const char* field) {
  out += '{';
  bool first = true;
  for (const auto& [name, s] : scores) {
    if (!first) out += ',';
    first = false;
    put_string(out, name, field);
    out += ":{\"value\":";
    put_float(out, s.value);
    if (!s.op_name.empty()) { out += ",\"op_name\":"; put_string(out, s.op_name, field); }
    if (!s.description.empty()) { out += ",\"description\":"; put_string(out, s.description, field); }
    if (!s.ref_id.empty()) { out += ",\"ref_id\":"; put_string(out, s.ref_id, field); }
    out += '}';
  }
  out += '}';
}

void put_doc(std::string& out, const Document& d) {
  auto key = [&](const char* name) { out += ",\""; out += name; out += "\":"; };
  auto str = [&](const char* name, const std::string& v) {
    if (v.empty()) return;
    key(name);
    put_string(out, v, name);
  };
  out += "{\"id\":";
  put_string(out, d.id, "id");
  str("parent_id", d.parent_id);
  if (d.granularity) { key("granularity"); out += std::to_string(d.granularity); }
  if (d.adjacency) { key("adjacency"); out += std::to_string(d.adjacency); }
  str("text", d.text);
  str("uri", d.uri);
  str("mime_type", d.mime_type);
  if (!d.blob.empty()) { key("blob"); out += '"' + detail::base64_encode(d.blob) + '"'; }
  if (d.tensor.defined()) { key("tensor"); put_tensor(out, d.tensor); }
  if (d.embedding.defined()) { key("embedding"); put_tensor(out, d.embedding); }
  str("modality", d.modality);
  if (d.weight != 0.0) { key("weight"); put_float(out, d.weight); }
  if (!d.tags.is_null()) { key("tags"); put_value(out, d.tags, "tags"); }
  if (!d.scores.empty()) { key("scores"); put_scores(out, d.scores, "scores"); }
  if (!d.evaluations.empty()) { key("evaluations"); put_scores(out, d.evaluations, "evaluations"); }
  for (auto [name, arr] : {std::pair{"chunks", &d.chunks}, std::pair{"matches", &d.matches}}) {
    if (arr->empty()) continue;
    key(name);
    out += '[';
    for (std::size_t i = 0; i < arr->size(); ++i) {
      if (i) out += ',';
      put_doc(out, (*arr)[i]);
    }
    out += ']';
  }
  out += '}';
}

// --- from JSON --------------------------------------------------------------

const char* kind(const Json& j) { return j.type_name(); }

std::string get_str(const Json& j, const std::string& field) {
  if (!j.is_string()) bad(field, std::string("expected a string, found ") + kind(j));
  return j.get<std::string>();
}

std::int64_t get_int(const Json& j, const std::string& field) {
  if (j.is_number_unsigned()) {
    auto u = j.get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
      bad(field, "integer " + std::to_string(u) + " does not fit in int64");
    return static_cast<std::int64_t>(u);
  }
  if (!j.is_number_integer()) bad(field, std::string("expected an integer, found ") + kind(j));
  return j.get<std::int64_t>();
}

double get_double(const Json& j, const std::string& field) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) {
    const auto& s = j.get_ref<const std::string&>();
    if (s == "NaN") return std::numeric_limits<double>::quiet_NaN();
    if (s == "Infinity") return std::numeric_limits<double>::infinity();
    if (s == "-Infinity") return -std::numeric_limits<double>::infinity();
  }
  bad(field, std::string("expected a number, found ") + (j.is_string() ? "\"" + j.get<std::string>() + "\"" : kind(j)));
}

Value json_to_value(const Json& j, const std::string& field, std::uint32_t depth) {
  check_depth(depth, field, "tag values");
  switch (j.type()) {
    case Json::value_t::null: return Value();
    case Json::value_t::boolean: return Value(j.get<bool>());
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return Value(get_int(j, field));
    case Json::value_t::number_float: return Value(j.get<double>());
    case Json::value_t::string: return Value(j.get<std::string>());
    case Json::value_t::array: {
      Value::List list;
      for (std::size_t i = 0; i < j.size(); ++i) list.push_back(json_to_value(j[i], field + "[" + std::to_string(i) + "]", depth + 1));
      return Value(std::move(list));
    }
    case Json::value_t::object: {
      Value::Map map;
      for (const auto& [k, v] : j.items()) map.emplace_back(k, json_to_value(v, field + "." + k, depth + 1));
      return Value(std::move(map));
    }
    default: bad(field, std::string("unsupported JSON value ") + kind(j));
  }
}

at::Tensor json_to_tensor(const Json& j, const std::string& field) {
  if (!j.is_object()) bad(field, std::string("expected {\"dtype\", \"shape\", \"data\"}, found ") + kind(j));
  for (const auto& [k, v] : j.items()) {
    if (k != "dtype" && k != "shape" && k != "data") bad(field, "unknown key '" + k + "'");
  }
  if (!j.contains("dtype") || !j.contains("shape") || !j.contains("data"))
    bad(field, "a tensor needs \"dtype\", \"shape\" and \"data\"");
  c10::ScalarType type;
  try {
    type = dtype_from_name(get_str(j["dtype"], field + ".dtype"));
  } catch (const Error& e) {
    bad(field + ".dtype", e.what());
  }
  const Json& shape = j["shape"];
  if (!shape.is_array()) bad(field + ".shape", std::string("expected a list, found ") + kind(shape));
  std::vector<std::int64_t> sizes;
  std::int64_t numel = 1;
  for (const auto& s : shape) {
    std::int64_t v = get_int(s, field + ".shape");
    if (v < 0) bad(field + ".shape", "negative dimension " + std::to_string(v));
    sizes.push_back(v);
    if (__builtin_mul_overflow(numel, v, &numel) || static_cast<std::uint64_t>(numel) > limits().tensor_elements)
      bad(field + ".shape", "has more elements than " + limit_hint("tensor_elements"));
  }
  const Json& data = j["data"];
  if (!data.is_array()) bad(field + ".data", std::string("expected a flat list, found ") + kind(data));
  if (static_cast<std::int64_t>(data.size()) != numel)
    bad(field + ".data", "holds " + std::to_string(data.size()) + " values, shape needs " + std::to_string(numel));
  std::string where = field + ".data";
  if (type == at::kBool) {
    at::Tensor t = at::empty(sizes, at::kBool);
    bool* p = t.data_ptr<bool>();
    for (std::int64_t i = 0; i < numel; ++i) {
      if (!data[i].is_boolean()) bad(where, "expected true or false at index " + std::to_string(i));
      p[i] = data[i].get<bool>();
    }
    return t;
  }
  if (at::isFloatingType(type)) {
    at::Tensor t = at::empty(sizes, at::kDouble);
    double* p = t.data_ptr<double>();
    for (std::int64_t i = 0; i < numel; ++i) p[i] = get_double(data[i], where + "[" + std::to_string(i) + "]");
    return t.to(type);
  }
  at::Tensor t = at::empty(sizes, at::kLong);
  std::int64_t* p = t.data_ptr<std::int64_t>();
  for (std::int64_t i = 0; i < numel; ++i) p[i] = get_int(data[i], where + "[" + std::to_string(i) + "]");
  at::Tensor out = t.to(type);
  if (!at::equal(out.to(at::kLong), t)) bad(where, std::string("values out of range for ") + dtype_name(type));
  return out;
}

Scores json_to_scores(const Json& j, const std::string& field) {
  if (!j.is_object()) bad(field, std::string("expected an object, found ") + kind(j));
  Scores scores;
  for (const auto& [name, s] : j.items()) {
    std::string where = field + "." + name;
    if (!s.is_object()) bad(where, std::string("expected an object, found ") + kind(s));
    NamedScore score;
    for (const auto& [k, v] : s.items()) {
      if (v.is_null()) continue;
      if (k == "value") score.value = get_double(v, where + ".value");
      else if (k == "op_name") score.op_name = get_str(v, where + ".op_name");
      else if (k == "description") score.description = get_str(v, where + ".description");
      else if (k == "ref_id") score.ref_id = get_str(v, where + ".ref_id");
      else bad(where, "unknown key '" + k + "' (expected value, op_name, description, ref_id)");
    }
    scores[name] = std::move(score);
  }
  return scores;
}

Document json_to_doc(const Json& j, std::uint32_t depth);

DocumentArray json_to_docs(const Json& j, const std::string& field, std::uint32_t depth) {
  if (!j.is_array()) bad(field, std::string("expected a list, found ") + kind(j));
  DocumentArray docs;
  for (std::size_t i = 0; i < j.size(); ++i) {
    try {
      docs.append(json_to_doc(j[i], depth));
    } catch (const Error& e) {
      throw Error(field + "[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return docs;
}

Document json_to_doc(const Json& j, std::uint32_t depth) {
  check_depth(depth, "document", "documents (chunks, matches)");
  if (!j.is_object()) throw Error(std::string("a document must be a JSON object, found ") + kind(j));
  Document d{std::string()};
  for (const auto& [k, v] : j.items()) {
    // null means "not set" for every field, as in DocArray's own to_json.
    if (v.is_null()) continue;
    if (k == "id") d.id = get_str(v, k);
    else if (k == "parent_id") d.parent_id = get_str(v, k);
    else if (k == "granularity") d.granularity = static_cast<std::int32_t>(get_int(v, k));
    else if (k == "adjacency") d.adjacency = static_cast<std::int32_t>(get_int(v, k));
    else if (k == "text") d.text = get_str(v, k);
    else if (k == "uri") d.uri = get_str(v, k);
    else if (k == "mime_type") d.mime_type = get_str(v, k);
    else if (k == "blob") {
      try {
        d.blob = detail::base64_decode(get_str(v, k));
      } catch (const Error& e) {
        bad(k, e.what());
      }
    }
    else if (k == "tensor") d.tensor = json_to_tensor(v, k);
    else if (k == "embedding") d.embedding = json_to_tensor(v, k);
    else if (k == "modality") d.modality = get_str(v, k);
    else if (k == "weight") d.weight = get_double(v, k);
    else if (k == "tags") {
      if (!v.is_object()) bad(k, std::string("expected an object, found ") + kind(v));
      d.tags = json_to_value(v, k, 0);
    }
    else if (k == "scores") d.scores = json_to_scores(v, k);
    else if (k == "evaluations") d.evaluations = json_to_scores(v, k);
    else if (k == "chunks") d.chunks = json_to_docs(v, k, depth + 1);
    else if (k == "matches") d.matches = json_to_docs(v, k, depth + 1);
    else
      bad(k, "unknown field (known: id, parent_id, granularity, adjacency, text, uri, mime_type, blob, tensor, "
             "embedding, modality, weight, tags, scores, evaluations, chunks, matches)");
  }
  if (d.id.empty()) d.id = random_id();  // a missing id gets a fresh one, as DocArray does
  return d;
}

}  // namespace

std::string to_json(const Document& doc) {
  std::string out;
  put_doc(out, doc);
  return out;
}

namespace {

// nlohmann's parser keeps its own stack, but the tree it builds is walked
// recursively here: the depth is bounded while parsing, before any walk.
// Documents nest two JSON levels each (object, chunks list), tags one; an
// envelope adds two (the message, its data).
Json parse_bounded(std::string_view text) {
  const int max_depth = 2 * static_cast<int>(limits().depth) + 10;
  Json::parser_callback_t bound = [max_depth](int depth, Json::parse_event_t, Json&) {
    if (depth > max_depth) throw Error("JSON nested deeper than " + limit_hint("depth"));
    return true;
  };
  try {
    return Json::parse(text.begin(), text.end(), bound);
  } catch (const Json::parse_error& e) {
    // e.byte counts from 1, at the character that broke the parse.
    throw Error("invalid JSON at byte " + std::to_string(e.byte) + ": " + e.what());
  } catch (const Json::out_of_range& e) {
    // A number beyond double's range (1e999): nlohmann says "number overflow".
    throw Error(std::string("a number is out of range: ") + e.what());
  } catch (const Json::exception& e) {
    throw Error(std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

Document from_json(const std::string& text) { return json_to_doc(parse_bounded(text), 0); }

Envelope parse_json_envelope(std::string_view text) {
  Json j = parse_bounded(text);
  if (!j.is_object()) throw Error(std::string("the message must be a JSON object, found ") + kind(j));
  Envelope env;
  for (const auto& [k, v] : j.items()) {
    if (k != "data") {
      env.fields.as_map().emplace_back(k, json_to_value(v, k, 0));
      continue;
    }
    if (v.is_null()) continue;
    // Jina's HTTP API takes the list itself or DocArray's {"docs": [...]}.
    if (v.is_object()) {
      if (v.size() != 1 || !v.contains("docs"))
        throw Error("field 'data': expected a list of documents or {\"docs\": [...]}, found an object with other keys");
      env.docs = json_to_docs(v["docs"], "data.docs", 0);
    } else {
      env.docs = json_to_docs(v, "data", 0);
    }
  }
  return env;
}

std::string to_json_envelope(const Value& fields, const DocumentArray& docs) {
  std::string out = "{";
  if (fields.is_map())
    for (const auto& [k, v] : fields.as_map()) {
      if (k == "data") continue;
      put_string(out, k, "key");
      out += ':';
      put_value(out, v, k.c_str());
      out += ',';
    }
  out += "\"data\":[";
  for (std::size_t i = 0; i < docs.size(); ++i) {
    if (i) out += ',';
    put_doc(out, docs[i]);
  }
  out += "]}";
  return out;
}

struct JsonlWriter::Impl {
  std::ofstream file;
  std::ostream* out;
  std::string name;
  bool closed = false;
};

JsonlWriter::JsonlWriter(const std::string& path) : impl_(new Impl) {
  impl_->file.open(path, std::ios::trunc);
  if (!impl_->file) throw Error("cannot open " + path + " for writing: " + std::strerror(errno));
  impl_->out = &impl_->file;
  impl_->name = path;
}
JsonlWriter::JsonlWriter(std::ostream& out, std::string name) : impl_(new Impl) {
  impl_->out = &out;
  impl_->name = std::move(name);
}
JsonlWriter::~JsonlWriter() {
  try {
    close();
  } catch (...) {
    // Destructors cannot report; call close() to see errors.
  }
}
void JsonlWriter::write(const Document& doc) {
  *impl_->out << to_json(doc) << '\n';
  if (!*impl_->out) throw Error("cannot write " + impl_->name + " (disk full?)");
}
void JsonlWriter::write(const DocumentArray& docs) {
  for (const auto& d : docs) write(d);
}
void JsonlWriter::close() {
  if (impl_->closed) return;
  impl_->closed = true;
  impl_->out->flush();
  if (impl_->file.is_open()) impl_->file.close();
  if (!*impl_->out) throw Error("cannot write " + impl_->name);
}

struct JsonlReader::Impl {
  std::ifstream file;
  std::istream* in;
  std::string name;
  std::size_t line_no = 0;
  std::string line;
};

JsonlReader::JsonlReader(const std::string& path) : impl_(new Impl) {
  impl_->file.open(path);
  if (!impl_->file) throw Error("cannot open " + path + ": " + std::strerror(errno));
  impl_->in = &impl_->file;
  impl_->name = path;
}
JsonlReader::JsonlReader(std::istream& in, std::string name) : impl_(new Impl) {
  impl_->in = &in;
  impl_->name = std::move(name);
}
JsonlReader::~JsonlReader() = default;

bool JsonlReader::next(Document& doc) {
  auto& im = *impl_;
  while (std::getline(*im.in, im.line)) {
    ++im.line_no;
    if (im.line.find_first_not_of(" \t\r") == std::string::npos) continue;
    try {
      doc = from_json(im.line);
    } catch (const Error& e) {
      throw Error(im.name + ":" + std::to_string(im.line_no) + ": " + e.what());
    }
    return true;
  }
  if (im.in->bad()) throw Error("cannot read " + im.name + " after line " + std::to_string(im.line_no));
  return false;
}

void save_jsonl(const DocumentArray& docs, const std::string& path) {
  JsonlWriter w(path);
  w.write(docs);
  w.close();
}

DocumentArray load_jsonl(const std::string& path) {
  JsonlReader r(path);
  DocumentArray out;
  Document d{std::string()};
  while (r.next(d)) out.append(std::move(d));
  return out;
}

}  // namespace docarray
