#pragma once
// The flow as a DAG (Boost.Graph): vertex 0 is the gateway, vertex i + 1 is
// executor i. Built from a FlowConfig; a `needs` on an unknown name and a
// cycle (naming its nodes) are ConfigErrors.
#include <string>
#include <vector>

#include "docflow/flow_config.hpp"

namespace docflow {

class FlowGraph {
 public:
  explicit FlowGraph(const FlowConfig& config);

  std::size_t size() const { return names_.size(); }  // gateway included
  const std::string& name(std::size_t v) const { return names_[v]; }
  const std::vector<std::size_t>& predecessors(std::size_t v) const { return preds_[v]; }
  const std::vector<std::size_t>& successors(std::size_t v) const { return succs_[v]; }
  // Vertices in topological order, gateway first.
  const std::vector<std::size_t>& order() const { return order_; }
  // Vertices without successors: their outputs are the flow's output.
  std::vector<std::size_t> sinks() const;

  // Graphviz DOT text.
  std::string to_dot(const FlowConfig& config) const;

 private:
  std::vector<std::string> names_;
  std::vector<std::vector<std::size_t>> preds_, succs_;
  std::vector<std::size_t> order_;
};

}  // namespace docflow
