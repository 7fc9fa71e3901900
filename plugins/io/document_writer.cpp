#include "document_writer.hpp"

#include <filesystem>

namespace docflow::io {

DocumentWriter::DocumentWriter(ExecutorContext context) : Executor(std::move(context)) {
  on("*", [this](Request& r) { write(r); });
}

void DocumentWriter::open() {
  path_ = params().get_string("path");
  std::string& path = path_;
  // In a distributed run every rank runs the writer: each writes a file of
  // its own (rank 0 the named one), so no rank overwrites another's documents.
  if (group().rank() > 0) {
    path += ".rank-" + std::to_string(group().rank());
    log().info(name(), "rank " + std::to_string(group().rank()) + " writes " + path);
  }
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  auto compression = params().get_string("compress") == "zstd" ? docarray::Compression::Zstd : docarray::Compression::None;
  writer_ = std::make_unique<docarray::DocumentFileWriter>(path, compression);
}

void DocumentWriter::write(Request& request) {
  writer_->write(request.docs);
  written_ += request.docs.size();
}

void DocumentWriter::on_event(const Event& event) {
  if (event.kind != Event::Kind::EndOfStream || !writer_) return;
  writer_->close();
  log().info(name(), "wrote " + std::to_string(written_) + " documents to " + path_);
  writer_.reset();
}

void DocumentWriter::close() {
  if (writer_) writer_->close();
  writer_.reset();
}

}  // namespace docflow::io
