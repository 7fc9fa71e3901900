# docflow_add_plugin(NAME SOURCES src... [LIBRARIES lib...])
#
# Builds a docflow plugin: a module library named docflow_plugin_NAME.so with
# hidden visibility (only the DOCFLOW_PLUGIN entry point is exported), linked
# to docflow and LibTorch. Used by every plugin in plugins/ and by
# out-of-tree plugins through find_package(docflow).
function(docflow_add_plugin name)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  if(NOT ARG_SOURCES)
    message(FATAL_ERROR "docflow_add_plugin(${name}): no SOURCES")
  endif()
  add_library(${name} MODULE ${ARG_SOURCES})
  set_target_properties(${name} PROPERTIES
    PREFIX ""
    OUTPUT_NAME "docflow_plugin_${name}"
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    CXX_STANDARD 17
    CXX_STANDARD_REQUIRED ON)
  target_link_libraries(${name} PRIVATE docflow::docflow ${ARG_LIBRARIES})
  if(DOCFLOW_PLUGIN_OUTPUT_DIR)
    set_target_properties(${name} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${DOCFLOW_PLUGIN_OUTPUT_DIR}")
  endif()
endfunction()
