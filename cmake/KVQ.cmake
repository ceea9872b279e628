# kvq_add_library(name SOURCES... [DEPENDS tgt...] [LINK_LIBS lib...])
#
# One static library of the project, linked against the shared libMLIR.so /
# libLLVM.so (never the static MLIR* archives), installed and exported as
# KVQ::<name> for find_package(KVQ).
function(kvq_add_library name)
  cmake_parse_arguments(ARG "" "" "DEPENDS;LINK_LIBS" ${ARGN})
  add_library(${name} STATIC ${ARG_UNPARSED_ARGUMENTS})
  if(ARG_DEPENDS)
    add_dependencies(${name} ${ARG_DEPENDS})
  endif()
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
    $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>
    $<INSTALL_INTERFACE:include>)
  # Every kvq library uses LLVM Support: link the shared libLLVM.so.
  target_link_libraries(${name} PUBLIC ${ARG_LINK_LIBS} LLVM)
  set_target_properties(${name} PROPERTIES
    ARCHIVE_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib)
  install(TARGETS ${name} EXPORT KVQTargets ARCHIVE DESTINATION lib)
endfunction()
find_program(KVQ_PTXAS ptxas PATHS /usr/local/cuda/bin)
