# Installs the libraries, headers, the `flow` tool and an exported CMake
# package, so that `find_package(docflow)` works for out-of-tree plugins.
include(CMakePackageConfigHelpers)

install(TARGETS docarray docflow_torch EXPORT docflowTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY docarray/include/docarray DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS flow RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

install(EXPORT docflowTargets NAMESPACE docflow:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/docflow)
configure_package_config_file(cmake/docflowConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/docflowConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/docflow)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/docflowConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${CMAKE_CURRENT_BINARY_DIR}/docflowConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/docflowConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/docflow)
