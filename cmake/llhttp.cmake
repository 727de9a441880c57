# llhttp, the HTTP/1.1 parser of Node.js, for goro::http.
#
# goro does not hand-write its request parser: llhttp is generated from a
# grammar by llparse and fuzzed upstream. It ships as generated C sources
# (api.c, http.c, llhttp.c and llhttp.h), which goro compiles into its own
# goro_http library, so installed and FetchContent consumers need no
# llhttp of their own.
#
# Where the sources come from, first found wins:
#   1. GORO_LLHTTP_DIR, when set: a directory holding those four files
#      (flat, or as the release tarball lays them out: src/ and include/).
#   2. Debian's node-llhttp package: /usr/share/llhttp/*.c and
#      /usr/share/include/llhttp/llhttp.h.
#   3. FetchContent of llhttp's upstream release tarball (the "release/"
#      tags carry the generated C sources; the plain tags do not), from
#      GORO_LLHTTP_URL, checked against its SHA-256.
#
# Sets GORO_LLHTTP_SOURCES (the three .c files) and GORO_LLHTTP_INCLUDE_DIR.
set(GORO_LLHTTP_DIR "" CACHE PATH
    "A directory with llhttp's generated api.c, http.c, llhttp.c and llhttp.h")
set(GORO_LLHTTP_VERSION 8.1.0)
set(GORO_LLHTTP_URL
    https://github.com/nodejs/llhttp/archive/refs/tags/release/v${GORO_LLHTTP_VERSION}.tar.gz
    CACHE STRING "Where FetchContent downloads llhttp's release tarball from (a mirror, or file://)")
set(GORO_LLHTTP_SHA256 9da0d23453e8e242cf3b2bc5d6fb70b1517b8a70520065fcbad6be787e86638e)

function(_goro_llhttp_from_directory directory)
  foreach(layout IN ITEMS "." "src")
    if(EXISTS ${directory}/${layout}/llhttp.c)
      set(sources ${directory}/${layout}/api.c ${directory}/${layout}/http.c
                  ${directory}/${layout}/llhttp.c)
      break()
    endif()
  endforeach()
  foreach(layout IN ITEMS "." "include")
    if(EXISTS ${directory}/${layout}/llhttp.h)
      set(include_dir ${directory}/${layout})
      break()
    endif()
  endforeach()
  if(sources AND include_dir)
    set(GORO_LLHTTP_SOURCES ${sources} PARENT_SCOPE)
    set(GORO_LLHTTP_INCLUDE_DIR ${include_dir} PARENT_SCOPE)
  endif()
endfunction()

if(GORO_LLHTTP_DIR)
  _goro_llhttp_from_directory(${GORO_LLHTTP_DIR})
  if(NOT GORO_LLHTTP_SOURCES)
    message(FATAL_ERROR "GORO_LLHTTP_DIR=${GORO_LLHTTP_DIR} holds no llhttp.c and llhttp.h")
  endif()
elseif(EXISTS /usr/share/llhttp/llhttp.c AND EXISTS /usr/share/include/llhttp/llhttp.h)
  set(GORO_LLHTTP_SOURCES /usr/share/llhttp/api.c /usr/share/llhttp/http.c
                          /usr/share/llhttp/llhttp.c)
  set(GORO_LLHTTP_INCLUDE_DIR /usr/share/include/llhttp)
else()
  include(FetchContent)
  # The hash pins the tarball's bytes: a download that differs (a moved tag,
  # a tampered mirror) fails the configure step instead of building.
  FetchContent_Declare(goro_llhttp
    URL ${GORO_LLHTTP_URL}
    URL_HASH SHA256=${GORO_LLHTTP_SHA256})
  # Populate only: the tarball's own CMakeLists.txt builds libraries goro
  # does not want; goro compiles the sources itself.
  FetchContent_GetProperties(goro_llhttp)
  if(NOT goro_llhttp_POPULATED)
    FetchContent_Populate(goro_llhttp)
  endif()
  _goro_llhttp_from_directory(${goro_llhttp_SOURCE_DIR})
  if(NOT GORO_LLHTTP_SOURCES)
    message(FATAL_ERROR "llhttp ${GORO_LLHTTP_VERSION}'s release tarball has no generated sources")
  endif()
endif()
message(STATUS "goro: llhttp from ${GORO_LLHTTP_INCLUDE_DIR}")
