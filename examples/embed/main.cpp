// docflow embedded in a program, as Jina's Flow().add(...).post(...):
//   embed OUT.jsonl
// builds reader-less flow [DocumentWriter], posts three documents to /index
// (synchronously), then three more with a callback per response, and prints
// what leaves the flow.
#include <docarray/docarray.hpp>
#include <docflow/flow.hpp>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: embed OUT.jsonl\n";
    return 2;
  }
  try {
    docarray::Value with;
    with["path"] = argv[1];
    docflow::Flow flow;
    flow.add("DocumentWriter", "writer", with);
    flow.open();

    docarray::DocumentArray docs;
    for (const char* text : {"a red dress", "black boots", "a grey pullover"}) {
      docarray::Document d;
      d.text = text;
      docs.append(d);
    }
    docarray::DocumentArray out = flow.post("/index", docs);
    std::cout << "sync: " << out.size() << " documents back\n";

    for (int i = 0; i < 3; ++i) {
      docarray::Document d;
      d.text = "posted with a callback #" + std::to_string(i);
      flow.post("/index", docarray::DocumentArray({d}), {}, [](docflow::Response r) {
        if (r.error) std::cout << "failed\n";
        else std::cout << "callback: " << r.request.docs[0].text << "\n";
      });
    }
    flow.wait();
    flow.close();
    std::cout << "written to " << argv[1] << "\n";
  } catch (const std::exception& e) {
    std::cerr << "embed: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
