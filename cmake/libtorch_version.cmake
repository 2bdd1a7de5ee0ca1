# Which LibTorch bertq is being built against, checked at configure time.
#
# bertq reproduces one PyTorch version's Python quantize_dynamic_jit byte for
# byte, so it must know exactly which LibTorch it has:
# - the version from TorchConfigVersion.cmake (Torch_VERSION), which Debian's
#   1.13.1 package reports as 1.13.0 (its headers say 1.13.0 too);
# - for a Debian package, the package's own version (1.13.1+dfsg-4), found
#   with dpkg-query; with pytorch.org's archive there is none.
# It refuses versions bertq was not written for (1.13 and 2.6 are tested; the
# 2.x passes it calls exist from 2.0 on) and checks that the headers of the
# quantization passes are installed, which some LibTorch builds leave out.
#
# Sets BERTQ_LIBTORCH_DEFINITIONS for bertq_torch:
#   BERTQ_LIBTORCH_VERSION="1.13.1"  (the package's upstream version when known)
#   BERTQ_LIBTORCH_PACKAGE="libtorch-dev 1.13.1+dfsg-4" (or "")

set(_bertq_torch_version "${Torch_VERSION}")
if(NOT _bertq_torch_version)
  message(FATAL_ERROR "bertq: find_package(Torch) gave no version; is this a LibTorch installation?")
endif()
set(_bertq_package "")
set(_bertq_upstream "${_bertq_torch_version}")
find_program(_bertq_dpkg_query dpkg-query)
if(_bertq_dpkg_query AND Torch_DIR)
  execute_process(COMMAND ${_bertq_dpkg_query} -S "${Torch_DIR}/TorchConfig.cmake"
                  OUTPUT_VARIABLE _owner RESULT_VARIABLE _rc ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(_rc EQUAL 0)
    string(REGEX REPLACE ":.*" "" _owner "${_owner}")
    execute_process(COMMAND ${_bertq_dpkg_query} -W -f=\${Version} ${_owner}
                    OUTPUT_VARIABLE _deb_version RESULT_VARIABLE _rc2 ERROR_QUIET OUTPUT_STRIP_TRAILING_WHITESPACE)
    if(_rc2 EQUAL 0 AND _deb_version)
      set(_bertq_package "${_owner} ${_deb_version}")
      # "1.13.1+dfsg-4" -> "1.13.1"
      string(REGEX REPLACE "^([0-9]+\\.[0-9]+\\.[0-9]+).*" "\\1" _bertq_upstream "${_deb_version}")
    endif()
  endif()
endif()

string(REGEX MATCH "^([0-9]+)\\.([0-9]+)" _mm "${_bertq_upstream}")
set(_major ${CMAKE_MATCH_1})
set(_minor ${CMAKE_MATCH_2})
if(NOT (_major EQUAL 1 AND _minor EQUAL 13) AND NOT (_major EQUAL 2))
  message(FATAL_ERROR "bertq: LibTorch ${_bertq_upstream} is not supported; bertq is built and tested "
                      "against 1.13 (Debian 12) and 2.6 (Debian 13), and builds with 2.x")
endif()
if(_major EQUAL 2 AND NOT _minor EQUAL 6)
  message(WARNING "bertq: LibTorch ${_bertq_upstream}: bertq's golden tests are for 1.13 and 2.6; "
                  "its output is compared with this version's Python only if you generate goldens for it")
endif()

# The passes bertq calls are internal headers; some builds do not install them.
foreach(_header torch/csrc/jit/passes/quantization/insert_observers.h
                torch/csrc/jit/passes/quantization/insert_quant_dequant.h
                torch/csrc/jit/passes/quantization/finalize.h
                caffe2/serialize/read_adapter_interface.h)
  set(_found FALSE)
  foreach(_dir IN LISTS TORCH_INCLUDE_DIRS)
    if(EXISTS "${_dir}/${_header}")
      set(_found TRUE)
    endif()
  endforeach()
  if(NOT _found)
    message(FATAL_ERROR "bertq: this LibTorch does not install ${_header} (in ${TORCH_INCLUDE_DIRS}); "
                        "bertq calls PyTorch's graph-mode quantization passes and needs their headers")
  endif()
endforeach()

message(STATUS "bertq: LibTorch ${_bertq_upstream} (Torch_VERSION ${_bertq_torch_version}"
               "${_bertq_package_note}) from ${Torch_DIR}")
if(_bertq_package)
  message(STATUS "bertq: LibTorch package: ${_bertq_package}")
endif()
set(BERTQ_LIBTORCH_VERSION "${_bertq_upstream}")
set(BERTQ_LIBTORCH_DEFINITIONS BERTQ_LIBTORCH_VERSION="${_bertq_upstream}"
                               BERTQ_LIBTORCH_PACKAGE="${_bertq_package}")
