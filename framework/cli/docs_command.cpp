// `flow docs show|convert`: how users and tests look inside document files.
#include <boost/program_options.hpp>

#include <iostream>

#include "command.hpp"
#include "options.hpp"
#include "docarray/document_file.hpp"
#include "docarray/error.hpp"
#include "docarray/summary.hpp"

namespace docflow::cli {
namespace {

const char* kDocsUsage =
    "usage: flow docs show FILE [--json] [--limit N]\n"
    "       flow docs convert IN OUT [--compress zstd]\n"
    "\n"
    "show     a summary of a document file and its first documents (binary or JSON Lines,\n"
    "         detected by content); --json prints the documents as JSON Lines instead\n"
    "convert  between the binary format and JSON Lines, chosen by OUT's extension\n"
    "         (.jsonl is JSON Lines, anything else, such as .docs, is binary)\n";

int show(const Args& args) {
  po::options_description opts("flow docs show options");
  opts.add_options()("help,h", "this help")("json", "print documents as JSON Lines")(
      "limit", po::value<long>()->default_value(10), "documents to print (-1: all)")(
      "file", po::value<std::string>(), "document file");
  po::positional_options_description pos;
  pos.add("file", 1);
  po::variables_map vm = parse_args(args, opts, pos);
  if (help_shown(vm, opts, kDocsUsage)) return kOk;
  if (!vm.count("file")) throw po::error("flow docs show needs a FILE");
  const std::string file = vm["file"].as<std::string>();
  const long limit = vm["limit"].as<long>();
  const bool json = vm.count("json") > 0;

  docarray::DocumentFileReader reader(file);
  docarray::Summary summary;
  docarray::Document doc{std::string()};
  while (reader.next(doc)) {
    bool print = limit < 0 || static_cast<long>(summary.count()) < limit;
    summary.add(doc);
    if (!print) continue;
    if (json) std::cout << docarray::to_json(doc) << "\n";
    else std::cout << "  " << docarray::describe(doc) << "\n";
  }
  if (!json) {
    const char* format = reader.format() == docarray::FileFormat::Binary ? "binary" : "JSON Lines";
    std::cout << file << " (" << format << "): " << summary.str();
  }
  return kOk;
}

int convert(const Args& args) {
  po::options_description opts("flow docs convert options");
  opts.add_options()("help,h", "this help")("compress", po::value<std::string>(), "zstd (binary output only)")(
      "in", po::value<std::string>(), "input file")("out", po::value<std::string>(), "output file");
  po::positional_options_description pos;
  pos.add("in", 1).add("out", 1);
  po::variables_map vm = parse_args(args, opts, pos);
  if (help_shown(vm, opts, kDocsUsage)) return kOk;
  if (!vm.count("in") || !vm.count("out")) throw po::error("flow docs convert needs IN and OUT");
  auto compression = docarray::Compression::None;
  if (vm.count("compress")) {
    if (vm["compress"].as<std::string>() != "zstd")
      throw po::error("--compress: expected zstd, got '" + vm["compress"].as<std::string>() + "'");
    compression = docarray::Compression::Zstd;
  }
  const std::string in = vm["in"].as<std::string>(), out = vm["out"].as<std::string>();
  docarray::DocumentFileReader reader(in);
  docarray::DocumentFileWriter writer(out, compression);
  docarray::Document doc{std::string()};
  std::size_t n = 0;
  while (reader.next(doc)) {
    writer.write(doc);
    ++n;
  }
  writer.close();
  std::cout << "converted " << n << " documents: " << in << " -> " << out << "\n";
  return kOk;
}

}  // namespace

int docs_command(const Args& args) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h") {
    std::cout << kDocsUsage;
    return args.empty() ? kBadInput : kOk;
  }
  Args rest(args.begin() + 1, args.end());
  try {
    if (args[0] == "show") return show(rest);
    if (args[0] == "convert") return convert(rest);
  } catch (const po::error& e) {
    std::cerr << "flow docs " << args[0] << ": " << e.what() << "\n" << kDocsUsage;
    return kBadInput;
  } catch (const docarray::Error& e) {
    std::cerr << "flow docs " << args[0] << ": " << e.what() << "\n";
    return kBadInput;
  }
  std::cerr << "flow docs: unknown command '" << args[0] << "'\n" << kDocsUsage;
  return kBadInput;
}

}  // namespace docflow::cli
