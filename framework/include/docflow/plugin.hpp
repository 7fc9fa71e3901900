#pragma once
// What a plugin author writes: executor classes, a table of them, and one
// DOCFLOW_PLUGIN(...) line that exports the entry point. No self-registering
// statics: the table is returned explicitly by the one exported function.
//
//   class Upper : public docflow::Executor { ... };
//   const docflow_param_schema kUpperParams[] = {
//       docflow::plugin::param("field", "string", "\"text\"", "which field to upper-case")};
//   const docflow_executor_entry kExecutors[] = {
//       docflow::plugin::executor<Upper>("Upper", "upper-cases text", kUpperParams)};
//   // An executor with state across requests (a file it writes, a model it
//   // trains) says so, and flows cannot give it replicas:
//   //   docflow::plugin::single_instance(docflow::plugin::executor<Writer>(...), "path")
//   DOCFLOW_PLUGIN("my-plugin", "1.0.0", "what it does", kExecutors)
#include "docflow/executor.hpp"
#include "docflow/plugin_abi.hpp"

namespace docflow::plugin {

template <typename E>
void* create(const void* context) {
  Executor* e = new E(*static_cast<const ExecutorContext*>(context));
  return e;
}

constexpr docflow_param_schema param(const char* name, const char* type, const char* default_json,
                                     const char* description) {
  return {name, type, default_json, description, 0, 0, 0.0, 0.0, nullptr};
}

constexpr docflow_param_schema ranged(docflow_param_schema p, double minimum, double maximum) {
  p.has_minimum = 1;
  p.has_maximum = 1;
  p.minimum = minimum;
  p.maximum = maximum;
  return p;
}

constexpr docflow_param_schema at_least(docflow_param_schema p, double minimum) {
  p.has_minimum = 1;
  p.minimum = minimum;
  return p;
}

constexpr docflow_param_schema one_of(docflow_param_schema p, const char* choices) {
  p.choices = choices;
  return p;
}

template <typename E, std::size_t N>
constexpr docflow_executor_entry executor(const char* name, const char* description,
                                          const docflow_param_schema (&params)[N], const char* details = nullptr) {
  return {name, description, std::is_base_of_v<Source, E> ? 1 : 0, params, N, &create<E>, details,
          std::is_base_of_v<Source, E> ? DOCFLOW_EXECUTOR_SINGLE_INSTANCE : 0u, nullptr};
}

template <typename E>
constexpr docflow_executor_entry executor(const char* name, const char* description) {
  return {name, description, std::is_base_of_v<Source, E> ? 1 : 0, nullptr, 0, &create<E>, nullptr,
          std::is_base_of_v<Source, E> ? DOCFLOW_EXECUTOR_SINGLE_INSTANCE : 0u, nullptr};
}

// Marks an entry as keeping state across requests: no replicas (see
// DOCFLOW_EXECUTOR_SINGLE_INSTANCE). `output_param`, when given, names the
// parameter holding the file it writes, so that validation can refuse two
// executors writing one file.
constexpr docflow_executor_entry single_instance(docflow_executor_entry e, const char* output_param = nullptr) {
  e.flags |= DOCFLOW_EXECUTOR_SINGLE_INSTANCE;
  e.output_param = output_param;
  return e;
}

}  // namespace docflow::plugin

#define DOCFLOW_PLUGIN(NAME, VERSION, DESCRIPTION, EXECUTORS)                                            \
  extern "C" __attribute__((visibility("default"))) const docflow_plugin_descriptor*                    \
  docflow_plugin_entry() {                                                                               \
    static const docflow_plugin_descriptor descriptor = {                                                \
        DOCFLOW_ABI_MAJOR, DOCFLOW_ABI_MINOR, DOCFLOW_BUILD_ID, NAME, VERSION, DESCRIPTION, EXECUTORS,    \
        sizeof(EXECUTORS) / sizeof(EXECUTORS[0])};                                                       \
    return &descriptor;                                                                                  \
  }
