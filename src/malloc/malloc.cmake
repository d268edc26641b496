# The malloc drop-in (docs/malloc.md; the model is in dropin.h): malloc and
# its family over the default heap, as
#   mpool_malloc         libmpool-malloc.so (soname libmpool-malloc.so.1),
#                        mpool::malloc_shared: the library's objects and
#                        the wrappers, exporting only the malloc names
#                        (mpool-malloc.map); for LD_PRELOAD, or to link
#   mpool_malloc_static  libmpool-malloc.a, mpool::malloc: the wrappers
#                        alone, over libmpool.a, to link
# Included by the top level (not a subdirectory: as a subproject, mpool
# adds no directories), so both land in the top of the build tree, where
# bench/run and the preload tests look. These sources are not part of
# libmpool (src/*.c).

set(MPOOL_MALLOC_SOVERSION 1) # malloc's ABI, which does not follow mpool's

set(mpool_malloc_dir ${CMAKE_CURRENT_LIST_DIR})
add_library(mpool_malloc_objects OBJECT ${mpool_malloc_dir}/malloc.c ${mpool_malloc_dir}/boot.c ${mpool_malloc_dir}/foreign.c ${mpool_malloc_dir}/exit.c)
target_include_directories(mpool_malloc_objects PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/src)
# -fno-builtin: this code defines malloc and calloc; the compiler must not
# turn any of it into calls of them. The allocation sites checked mode
# records are the program's only when the calls into the heap are tail
# calls, which an unoptimised build does not make.
target_compile_options(mpool_malloc_objects PRIVATE ${MPOOL_WARNINGS} -fno-builtin
  $<$<CONFIG:Debug>:-O2>)
set_target_properties(mpool_malloc_objects PROPERTIES C_VISIBILITY_PRESET hidden POSITION_INDEPENDENT_CODE ON)

set(mpool_malloc_install "")

if(MPOOL_BUILD_SHARED)
  add_library(mpool_malloc SHARED $<TARGET_OBJECTS:mpool_objects> $<TARGET_OBJECTS:mpool_malloc_objects>)
  set_target_properties(mpool_malloc PROPERTIES OUTPUT_NAME mpool-malloc EXPORT_NAME malloc_shared
    VERSION ${PROJECT_VERSION} SOVERSION ${MPOOL_MALLOC_SOVERSION}
    LINK_DEPENDS ${mpool_malloc_dir}/mpool-malloc.map)
  target_link_libraries(mpool_malloc PRIVATE Threads::Threads ${CMAKE_DL_LIBS})
  # Only the malloc names leave the library; calls between its own
  # functions bind inside it; it is never unloaded (its blocks outlive any
  # dlclose).
  target_link_options(mpool_malloc PRIVATE -Wl,--version-script=${mpool_malloc_dir}/mpool-malloc.map
    -Wl,-Bsymbolic-functions -Wl,-z,nodelete -Wl,--no-undefined)
  add_library(mpool::malloc_shared ALIAS mpool_malloc)
  list(APPEND mpool_malloc_install mpool_malloc)
endif()

if(MPOOL_BUILD_STATIC)
  add_library(mpool_malloc_static STATIC $<TARGET_OBJECTS:mpool_malloc_objects>)
  set_target_properties(mpool_malloc_static PROPERTIES OUTPUT_NAME mpool-malloc EXPORT_NAME malloc)
  target_link_libraries(mpool_malloc_static PUBLIC mpool_static)
  # A program's symbols are exported only where a shared library of the
  # link refers to them (malloc and free, but not calloc, realloc, ...):
  # every malloc name must be, or the C library keeps its own for those.
  file(STRINGS ${mpool_malloc_dir}/mpool-malloc.map mpool_malloc_map REGEX "^    [_a-z].*;")
  string(REGEX MATCHALL "[_a-z]+" mpool_malloc_names "${mpool_malloc_map}")
  foreach(mpool_malloc_name ${mpool_malloc_names})
    target_link_options(mpool_malloc_static INTERFACE "LINKER:--export-dynamic-symbol=${mpool_malloc_name}")
  endforeach()
  add_library(mpool::malloc ALIAS mpool_malloc_static)
  list(APPEND mpool_malloc_install mpool_malloc_static)
endif()

install(TARGETS ${mpool_malloc_install} EXPORT mpoolTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
