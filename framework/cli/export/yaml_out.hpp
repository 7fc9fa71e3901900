#pragma once
// JSON values written as YAML documents, for manifests: strings that YAML
// would read as something else ("8080", "true", "null", "") are quoted, and
// multi-line strings (a ConfigMap's flow file) are written as literal blocks.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace docflow::cli {

std::string yaml_documents(const std::vector<nlohmann::ordered_json>& documents);

}  // namespace docflow::cli
