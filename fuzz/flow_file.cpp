// Flow files and --set values: the first line of the input is a --set
// assignment (applied as an override), the rest the YAML.
#include <string>

#include "docflow/error.hpp"
#include "docflow/flow_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const unsigned char* data, std::size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  std::size_t nl = text.find('\n');
  std::vector<docflow::Override> overrides;
  if (nl != std::string::npos && nl > 0) overrides.push_back({text.substr(0, nl)});
  try {
    docflow::FlowConfig f = docflow::parse_flow_text(nl == std::string::npos ? text : text.substr(nl + 1), "fuzz.yml",
                                                     overrides);
    docflow::to_yaml(f);
  } catch (const docflow::Error&) {
  }
  return 0;
}
