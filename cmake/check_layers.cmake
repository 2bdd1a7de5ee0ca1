# The layers of lib/, from the bottom up, and what each may include. A file
# in lib/LAYER/ may include "OTHER/..." only if OTHER is LAYER itself or one
# of LAYER's dependencies here: an include that climbs back up (and so makes
# a cycle between layers) fails the configure and the build.
#
# Run by the top-level CMakeLists.txt at configure time, and as a build step
# (cmake -P cmake/check_layers.cmake -DBERTQ_SOURCE_DIR=...) whenever a file
# of lib/ changes, so that an edit is refused without re-running cmake.
#
# The core (no LibTorch): base, qconfig, plan, archive, report, text, batch.
# LibTorch's: jit (loading, saving and reading TorchScript models), convert,
# inspect, run, tune.
cmake_policy(SET CMP0057 NEW)  # if(IN_LIST), also when run with -P

set(BERTQ_LAYERS base qconfig plan archive report text batch jit convert inspect run tune)
set(BERTQ_LAYER_DEPS_base "")
set(BERTQ_LAYER_DEPS_qconfig base)
set(BERTQ_LAYER_DEPS_plan base qconfig)
set(BERTQ_LAYER_DEPS_archive base qconfig plan)
set(BERTQ_LAYER_DEPS_report base qconfig plan archive)
set(BERTQ_LAYER_DEPS_text base)
set(BERTQ_LAYER_DEPS_batch base qconfig plan archive report)
set(BERTQ_LAYER_DEPS_jit base qconfig plan archive)
set(BERTQ_LAYER_DEPS_convert base qconfig plan archive report jit)
set(BERTQ_LAYER_DEPS_inspect base qconfig plan archive report jit convert)
set(BERTQ_LAYER_DEPS_run base qconfig plan archive report text jit convert inspect)
set(BERTQ_LAYER_DEPS_tune base qconfig plan archive report text jit convert inspect run)
set(BERTQ_CORE_LAYERS base qconfig plan archive report text batch)

function(bertq_check_layers source_dir)
  set(problems "")
  foreach(layer IN LISTS BERTQ_LAYERS)
    file(GLOB files "${source_dir}/lib/${layer}/*.h" "${source_dir}/lib/${layer}/*.cpp" "${source_dir}/lib/${layer}/*.in")
    set(allowed ${layer} ${BERTQ_LAYER_DEPS_${layer}})
    foreach(f IN LISTS files)
      file(STRINGS "${f}" includes REGEX "^#include \"[a-z_]+/")
      foreach(line IN LISTS includes)
        string(REGEX MATCH "\"([a-z_]+)/" _ "${line}")
        set(target "${CMAKE_MATCH_1}")
        if(NOT target IN_LIST allowed)
          file(RELATIVE_PATH rel "${source_dir}" "${f}")
          string(REPLACE ";" ", " allowed_text "${allowed}")
          string(APPEND problems "\n  ${rel}: ${line} (layer ${layer} may include: ${allowed_text})")
        endif()
      endforeach()
      # The core builds without LibTorch installed.
      if(layer IN_LIST BERTQ_CORE_LAYERS)
        file(STRINGS "${f}" torch_includes REGEX "^#include <(torch|ATen|c10|caffe2)/")
        foreach(line IN LISTS torch_includes)
          file(RELATIVE_PATH rel "${source_dir}" "${f}")
          string(APPEND problems "\n  ${rel}: ${line} (layer ${layer} is core: no LibTorch headers)")
        endforeach()
      endif()
    endforeach()
  endforeach()
  # Every folder of lib/ is a layer of the list.
  file(GLOB dirs LIST_DIRECTORIES true "${source_dir}/lib/*")
  foreach(d IN LISTS dirs)
    if(IS_DIRECTORY "${d}")
      get_filename_component(name "${d}" NAME)
      if(NOT name IN_LIST BERTQ_LAYERS)
        string(APPEND problems "\n  lib/${name}/ is not a layer of cmake/check_layers.cmake")
      endif()
    endif()
  endforeach()
  if(problems)
    message(FATAL_ERROR "bertq: includes that break the layers of lib/:${problems}\n"
                        "Move the file to the layer its includes say it belongs to (docs/design.md).")
  endif()
endfunction()

# As a script: cmake -DBERTQ_SOURCE_DIR=... -DBERTQ_STAMP=... -P check_layers.cmake
if(CMAKE_SCRIPT_MODE_FILE AND BERTQ_SOURCE_DIR)
  bertq_check_layers("${BERTQ_SOURCE_DIR}")
  if(BERTQ_STAMP)
    file(TOUCH "${BERTQ_STAMP}")
  endif()
endif()
