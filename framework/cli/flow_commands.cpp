// `flow validate | plot | plugins`.
#include <filesystem>
#include <fstream>
#include <iomanip>

#include "docflow/flow.hpp"
#include "options.hpp"

namespace docflow::cli {

int validate_command(const Args& args) {
  return guarded("validate", [&] {
    po::options_description opts("flow validate FILE [--set KEY=VALUE]...");
    opts.add_options()("help,h", "this help")("set", po::value<std::vector<std::string>>(), "override a value")(
        "file", po::value<std::string>(), "flow file");
    po::positional_options_description pos;
    pos.add("file", 1);
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("file")) throw po::error("needs a flow FILE");
    Flow flow = Flow::load(vm["file"].as<std::string>(), overrides_of(vm));
    std::cout << vm["file"].as<std::string>() << ": valid, " << flow.config().executors.size()
              << " executors in topological order:";
    for (std::size_t v : flow.graph().order())
      if (v) std::cout << " " << flow.graph().name(v);
    std::cout << "\n";
    return kOk;
  });
}

int plot_command(const Args& args) {
  return guarded("plot", [&] {
    po::options_description opts("flow plot FILE [-o OUT]");
    opts.add_options()("help,h", "this help")("output,o", po::value<std::string>(),
                                              "OUT.dot, or OUT.svg where Graphviz's `dot` is installed; default stdout")(
        "file", po::value<std::string>(), "flow file");
    po::positional_options_description pos;
    pos.add("file", 1);
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    if (!vm.count("file")) throw po::error("needs a flow FILE");
    // The graph needs no plugins: parse and build it only.
    FlowConfig config = parse_flow_file(vm["file"].as<std::string>());
    std::string dot = FlowGraph(config).to_dot(config);
    if (!vm.count("output")) {
      std::cout << dot;
      return kOk;
    }
    std::filesystem::path out = vm["output"].as<std::string>();
    if (out.extension() == ".svg") {
      if (std::system("command -v dot > /dev/null 2>&1") != 0)
        throw Error("writing SVG needs Graphviz's `dot` (apt-get install graphviz); use -o " +
                    out.replace_extension(".dot").string() + " for DOT");
      std::filesystem::path tmp = out;
      tmp += ".dot";
      std::ofstream(tmp) << dot;
      int rc = std::system(("dot -Tsvg '" + tmp.string() + "' -o '" + out.string() + "'").c_str());
      std::filesystem::remove(tmp);
      if (rc != 0) throw Error("dot failed to write " + out.string());
    } else {
      std::ofstream f(out);
      f << dot;
      if (!f) throw Error("cannot write " + out.string());
    }
    std::cout << "wrote " << out.string() << "\n";
    return kOk;
  });
}

int plugins_command(const Args& args) {
  return guarded("plugins", [&] {
    po::options_description opts("flow plugins [describe NAME] [--plugin-path DIR]...");
    opts.add_options()("help,h", "this help")("plugin-path", po::value<std::vector<std::string>>(),
                                              "also search this folder or file")(
        "words", po::value<std::vector<std::string>>(), "describe NAME");
    po::positional_options_description pos;
    pos.add("words", -1);
    auto vm = parse_args(args, opts, pos);
    if (help_shown(vm, opts)) return kOk;
    std::vector<std::string> extra;
    if (vm.count("plugin-path")) extra = vm["plugin-path"].as<std::vector<std::string>>();
    PluginRegistry registry;
    registry.load(PluginRegistry::search_path(extra, ""), {});
    std::vector<std::string> words;
    if (vm.count("words")) words = vm["words"].as<std::vector<std::string>>();
    if (words.empty()) {
      std::cout << pad("PLUGIN", 12) << pad("EXECUTOR", 24) << "DESCRIPTION\n";
      for (const auto& x : registry.executors())
        std::cout << pad(x.plugin->name, 12) << pad(x.name, 24) << x.description << (x.is_source ? " [source]" : "")
                  << "\n";
      for (const auto& r : registry.refused()) std::cout << "refused: " << r.reason << "\n";
      return kOk;
    }
    if (words.size() != 2 || words[0] != "describe") throw po::error("expected `flow plugins` or `flow plugins describe NAME`");
    const ExecutorInfo& x = registry.find(words[1]);
    std::cout << x.name << " (plugin " << x.plugin->name << " " << x.plugin->version << ", " << x.plugin->path
              << ")\n  " << x.description << "\n\nparameters:\n";
    for (const auto& p : x.schema) {
      std::string range;
      // Whole bounds print as integers ("batch_size ... >= 2", not ">= 2.0").
      auto bound = [](double v) {
        return v == static_cast<double>(static_cast<long long>(v)) ? std::to_string(static_cast<long long>(v))
                                                                   : docarray::Value(v).dump();
      };
      if (p.minimum) range += " >= " + bound(*p.minimum);
      if (p.maximum) range += " <= " + bound(*p.maximum);
      std::string choices;
      for (const auto& c : p.choices) choices += (choices.empty() ? " one of " : "|") + c;
      std::cout << "  " << pad(p.name, 18) << pad(param_type_name(p.type), 8)
                << pad(p.default_value ? "= " + p.default_value->dump() : "(required)", 14) << p.description << range
                << choices << "\n";
    }
    if (!x.details.empty()) std::cout << "\n" << x.details << "\n";
    return kOk;
  });
}

}  // namespace docflow::cli
