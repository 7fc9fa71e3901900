#pragma once
// DocumentWriter: streams every document that reaches it to a file (binary
// or JSON Lines by extension) and passes the documents on. The file is
// complete (end marker written) at the end of the stream or at close().
#include <memory>

#include "docarray/document_file.hpp"
#include "docflow/executor.hpp"

namespace docflow::io {

class DocumentWriter : public Executor {
 public:
  explicit DocumentWriter(ExecutorContext context);
  void open() override;
  void close() override;
  void on_event(const Event& event) override;

 private:
  void write(Request& request);
  std::unique_ptr<docarray::DocumentFileWriter> writer_;
  std::size_t written_ = 0;
  std::string path_;  // the file this rank writes
};

}  // namespace docflow::io
