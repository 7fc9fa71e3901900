# Installs the libraries, headers, the `flow` tool, the built-in plugins and
# an exported CMake package, so that `find_package(docflow)` works for
# out-of-tree plugins and embedding programs.
include(CMakePackageConfigHelpers)

set(DOCFLOW_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/docflow)

install(TARGETS docarray_base docarray docflow_base docflow docflow_torch EXPORT docflowTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY docarray/include/docarray framework/include/docflow DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS flow RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
# `flow` loads it for the commands that need LibTorch (framework/cli/main.cpp).
install(TARGETS docflow_cli LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})

install(EXPORT docflowTargets NAMESPACE docflow:: DESTINATION ${DOCFLOW_INSTALL_CMAKEDIR})
configure_package_config_file(cmake/docflowConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/docflowConfig.cmake
  INSTALL_DESTINATION ${DOCFLOW_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/docflowConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/docflowConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/docflowConfigVersion.cmake
  cmake/DocflowPlugin.cmake
  DESTINATION ${DOCFLOW_INSTALL_CMAKEDIR})
