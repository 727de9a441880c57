# FindLiburing
# ------------
# Finds liburing (Debian: liburing-dev, which ships a pkg-config file but no
# CMake config) and defines the imported target liburing::liburing.
#
# Result variables: Liburing_FOUND, Liburing_VERSION, Liburing_INCLUDE_DIRS,
# Liburing_LIBRARIES. Cache variables: Liburing_INCLUDE_DIR, Liburing_LIBRARY.

find_package(PkgConfig QUIET)
if(PkgConfig_FOUND)
  pkg_check_modules(PC_LIBURING QUIET liburing)
endif()

find_path(Liburing_INCLUDE_DIR
  NAMES liburing.h
  HINTS ${PC_LIBURING_INCLUDEDIR} ${PC_LIBURING_INCLUDE_DIRS})
find_library(Liburing_LIBRARY
  NAMES uring
  HINTS ${PC_LIBURING_LIBDIR} ${PC_LIBURING_LIBRARY_DIRS})

if(PC_LIBURING_VERSION)
  set(Liburing_VERSION "${PC_LIBURING_VERSION}")
endif()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Liburing
  REQUIRED_VARS Liburing_LIBRARY Liburing_INCLUDE_DIR
  VERSION_VAR Liburing_VERSION
  REASON_FAILURE_MESSAGE
    "liburing was not found. On Debian/Ubuntu: sudo apt-get install -y liburing-dev")

if(Liburing_FOUND)
  set(Liburing_INCLUDE_DIRS "${Liburing_INCLUDE_DIR}")
  set(Liburing_LIBRARIES "${Liburing_LIBRARY}")
  if(NOT TARGET liburing::liburing)
    add_library(liburing::liburing UNKNOWN IMPORTED)
    set_target_properties(liburing::liburing PROPERTIES
      IMPORTED_LOCATION "${Liburing_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${Liburing_INCLUDE_DIR}")
  endif()
endif()

mark_as_advanced(Liburing_INCLUDE_DIR Liburing_LIBRARY)
