#include "docarray/storage_view.hpp"

#include <c10/core/TensorImpl.h>

namespace docarray {

at::Tensor storage_view(const c10::Storage& storage, std::int64_t offset, c10::IntArrayRef sizes, c10::ScalarType type) {
  auto impl = c10::make_intrusive<c10::TensorImpl>(c10::Storage(storage), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                                   caffe2::TypeMeta::fromScalarType(type));
  impl->set_storage_offset(offset);
  impl->set_sizes_contiguous(sizes);
  return at::Tensor(std::move(impl));
}

}  // namespace docarray
