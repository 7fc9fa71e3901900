#include "file_mapping.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "docarray/error.hpp"

namespace docarray::detail {
namespace {

struct Mapping {
  void* address;
  std::size_t length;
};

void unmap(void* context) {
  auto* m = static_cast<Mapping*>(context);
  ::munmap(m->address, m->length);
  delete m;
}

}  // namespace

std::optional<MappedFile> map_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) {
    ::close(fd);
    return std::nullopt;
  }
  const auto length = static_cast<std::size_t>(st.st_size);
  // PROT_WRITE with MAP_PRIVATE: pages are copied on the first write, so a
  // caller normalising an embedding in place gets its own page, as it would
  // with a tensor it had allocated.
  void* address = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file's pages
  if (address == MAP_FAILED) throw Error("cannot map " + path + ": " + std::strerror(map_errno));
  MappedFile out;
  out.data = static_cast<const char*>(address);
  out.size = length;
  c10::DataPtr bytes(address, new Mapping{address, length}, &unmap, c10::Device(c10::kCPU));
  out.storage = c10::Storage(c10::Storage::use_byte_size_t(), length, std::move(bytes), nullptr, false);
  return out;
}

}  // namespace docarray::detail
