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
  // Every page is read (each record's header lies on it): map them all in
  // one call instead of one page fault per 4 KiB (a quarter of a 100k
  // document read, measured). Populated read-only: populating a writable
  // private mapping would copy every page. Very large files are left to
  // fault page by page, as they are read, rather than read whole up front.
  constexpr std::size_t kPopulateUpTo = std::size_t{4} << 30;
  const int populate = length <= kPopulateUpTo ? MAP_POPULATE : 0;
  void* address = ::mmap(nullptr, length, PROT_READ, MAP_PRIVATE | populate, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file's pages
  if (address == MAP_FAILED) throw Error("cannot map " + path + ": " + std::strerror(map_errno));
  // Writable, copy-on-write: a caller normalising an embedding in place gets
  // its own page, as it would with a tensor it had allocated; the file and
  // other documents are untouched.
  if (::mprotect(address, length, PROT_READ | PROT_WRITE) != 0) {
    const int e = errno;
    ::munmap(address, length);
    throw Error("cannot map " + path + " copy-on-write: " + std::strerror(e));
  }
  MappedFile out;
  out.data = static_cast<const char*>(address);
  out.size = length;
  c10::DataPtr bytes(address, new Mapping{address, length}, &unmap, c10::Device(c10::kCPU));
  out.storage = c10::Storage(c10::Storage::use_byte_size_t(), length, std::move(bytes), nullptr, false);
  return out;
}

}  // namespace docarray::detail
