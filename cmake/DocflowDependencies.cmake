# Every dependency is a Debian 12 package (scripts/setup.sh installs them).
find_package(Torch REQUIRED)
find_package(Boost 1.74 REQUIRED COMPONENTS program_options filesystem)
find_package(yaml-cpp REQUIRED)
find_package(Threads REQUIRED)
find_package(msgpack REQUIRED CONFIG)  # Debian ships msgpack-config.cmake with target msgpackc-cxx
find_package(nlohmann_json 3 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(ZSTD REQUIRED IMPORTED_TARGET libzstd)

# Debian's TorchConfig exposes a plain list of libraries plus compile flags;
# wrap them in one interface target so that every consumer links the same way.
if(NOT TARGET docflow_torch)
  add_library(docflow_torch INTERFACE)
  target_link_libraries(docflow_torch INTERFACE ${TORCH_LIBRARIES})
  target_include_directories(docflow_torch SYSTEM INTERFACE ${TORCH_INCLUDE_DIRS})
  separate_arguments(_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  target_compile_options(docflow_torch INTERFACE ${_torch_flags})
endif()
