#include "docflow/flow_graph.hpp"

#include <boost/graph/adjacency_list.hpp>
#include <boost/graph/depth_first_search.hpp>
#include <boost/graph/topological_sort.hpp>

#include <algorithm>
#include <functional>
#include <sstream>

namespace docflow {
namespace {

using Graph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS>;

// Finds one cycle with a depth-first search and returns its vertices in order.
std::vector<std::size_t> find_cycle(const std::vector<std::vector<std::size_t>>& succs) {
  const std::size_t n = succs.size();
  std::vector<int> state(n, 0);  // 0 new, 1 on the stack, 2 done
  std::vector<std::size_t> stack;
  std::vector<std::size_t> cycle;
  std::function<bool(std::size_t)> visit = [&](std::size_t v) {
    state[v] = 1;
    stack.push_back(v);
    for (std::size_t w : succs[v]) {
      if (state[w] == 1) {
        auto it = std::find(stack.begin(), stack.end(), w);
        cycle.assign(it, stack.end());
        return true;
      }
      if (state[w] == 0 && visit(w)) return true;
    }
    stack.pop_back();
    state[v] = 2;
    return false;
  };
  for (std::size_t v = 0; v < n; ++v)
    if (state[v] == 0 && visit(v)) break;
  return cycle;
}

}  // namespace

FlowGraph::FlowGraph(const FlowConfig& config) {
  names_.push_back("gateway");
  for (const auto& e : config.executors) names_.push_back(e.name);
  preds_.resize(names_.size());
  succs_.resize(names_.size());
  Graph g(names_.size());
  for (std::size_t i = 0; i < config.executors.size(); ++i) {
    const ExecutorConfig& e = config.executors[i];
    for (const auto& need : e.needs) {
      auto it = std::find(names_.begin(), names_.end(), need);
      if (it == names_.end()) {
        std::string hint = closest_match(need, names_);
        throw ConfigError(e.needs_where.line ? e.needs_where : e.where,
                          "executor '" + e.name + "' needs '" + need + "', which is not an executor of this flow" +
                              (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
      }
      std::size_t from = static_cast<std::size_t>(it - names_.begin()), to = i + 1;
      if (from == to) throw ConfigError(e.needs_where, "executor '" + e.name + "' needs itself");
      if (std::find(preds_[to].begin(), preds_[to].end(), from) != preds_[to].end()) continue;
      preds_[to].push_back(from);
      succs_[from].push_back(to);
      boost::add_edge(from, to, g);
    }
  }
  std::vector<std::size_t> reversed;
  try {
    boost::topological_sort(g, std::back_inserter(reversed));
  } catch (const boost::not_a_dag&) {
    std::vector<std::size_t> cycle = find_cycle(succs_);
    std::string path;
    for (std::size_t v : cycle) path += names_[v] + " -> ";
    path += cycle.empty() ? "?" : names_[cycle.front()];
    const ExecutorConfig& first = config.executors[cycle.empty() ? 0 : cycle.front() - 1];
    throw ConfigError(first.needs_where.line ? first.needs_where : first.where, "the flow has a cycle: " + path);
  }
  // Every executor is reachable from the gateway: needs are never empty and
  // the graph is acyclic.
  order_.assign(reversed.rbegin(), reversed.rend());
}

std::vector<std::size_t> FlowGraph::sinks() const {
  std::vector<std::size_t> out;
  for (std::size_t v = 1; v < names_.size(); ++v)
    if (succs_[v].empty()) out.push_back(v);
  return out;
}

std::string FlowGraph::to_dot(const FlowConfig& config) const {
  std::ostringstream dot;
  dot << "digraph \"" << config.name << "\" {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n";
  dot << "  \"gateway\" [shape=circle];\n";
  for (const auto& e : config.executors) {
    dot << "  \"" << e.name << "\" [label=\"" << e.name << "\\n" << e.uses;
    if (e.replicas > 1) dot << " x" << e.replicas;
    dot << "\"];\n";
  }
  for (std::size_t v = 0; v < names_.size(); ++v)
    for (std::size_t w : succs_[v]) {
      const ExecutorConfig& e = config.executors[w - 1];
      dot << "  \"" << names_[v] << "\" -> \"" << names_[w] << "\"";
      if (!e.when.is_null()) {
        std::string label = e.when.dump();
        for (std::size_t p; (p = label.find('"')) != std::string::npos;) label.replace(p, 1, "'");
        dot << " [label=\"when " << label << "\"]";
      }
      dot << ";\n";
    }
  dot << "}\n";
  return dot.str();
}

}  // namespace docflow
