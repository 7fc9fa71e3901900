#include "yaml_out.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

namespace docflow::cli {
namespace {

// What a plain scalar would resolve to in YAML 1.1 or 1.2 other than a string.
bool reads_as_non_string(const std::string& s) {
  if (s.empty()) return true;
  std::string low;
  for (char c : s) low += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* word : {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ".inf", "-.inf", ".nan"})
    if (low == word) return true;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  if (end && *end == '\0') return true;
  return s.front() == ' ' || s.back() == ' ';
}

void emit(YAML::Emitter& out, const nlohmann::ordered_json& v) {
  switch (v.type()) {
    case nlohmann::ordered_json::value_t::object:
      if (v.empty()) out << YAML::Flow;  // {} rather than an empty block
      out << YAML::BeginMap;
      for (const auto& [k, item] : v.items()) {
        out << YAML::Key << k << YAML::Value;
        emit(out, item);
      }
      out << YAML::EndMap;
      break;
    case nlohmann::ordered_json::value_t::array:
      // Short lists of plain strings (commands, ports) read best inline.
      if (!v.empty() && v.size() <= 12 && std::all_of(v.begin(), v.end(), [](const nlohmann::ordered_json& x) {
            return x.is_primitive() && (!x.is_string() || x.get<std::string>().find('\n') == std::string::npos);
          }))
        out << YAML::Flow;
      out << YAML::BeginSeq;
      for (const auto& item : v) emit(out, item);
      out << YAML::EndSeq;
      break;
    case nlohmann::ordered_json::value_t::string: {
      const std::string s = v.get<std::string>();
      if (s.find('\n') != std::string::npos) out << YAML::Literal << s;
      else if (reads_as_non_string(s)) out << YAML::DoubleQuoted << s;
      else out << s;
      break;
    }
    case nlohmann::ordered_json::value_t::boolean: out << v.get<bool>(); break;
    case nlohmann::ordered_json::value_t::number_integer: out << v.get<long long>(); break;
    case nlohmann::ordered_json::value_t::number_unsigned: out << v.get<unsigned long long>(); break;
    case nlohmann::ordered_json::value_t::number_float: out << v.get<double>(); break;
    default: out << YAML::Null; break;
  }
}

}  // namespace

std::string yaml_documents(const std::vector<nlohmann::ordered_json>& documents) {
  std::string text;
  for (const auto& d : documents) {
    YAML::Emitter out;
    emit(out, d);
    text += "---\n" + std::string(out.c_str()) + "\n";
  }
  return text;
}

}  // namespace docflow::cli
