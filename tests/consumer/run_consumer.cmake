# Configures, builds and runs one consumer project; fails on any error.
# Run with cmake -P. Variables:
#   CMAKE_COMMAND GENERATOR CXX_COMPILER BUILD_TYPE SOURCE_DIR BINARY_DIR
#   EXTRA_ARGS    one extra -D argument for the configure step (optional)
#   INSTALL_FROM  a goro build tree to install into STAGE_DIR first, which then
#                 goes to the consumer as CMAKE_PREFIX_PATH (optional)
cmake_minimum_required(VERSION 3.25)

function(step)
  string(JOIN " " line ${ARGN})
  message(STATUS "consumer: ${line}")
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer: failed (${rc}): ${line}")
  endif()
endfunction()

set(configure_args -G ${GENERATOR} -DCMAKE_CXX_COMPILER=${CXX_COMPILER}
  -DCMAKE_BUILD_TYPE=${BUILD_TYPE})
if(EXTRA_ARGS)
  list(APPEND configure_args ${EXTRA_ARGS})
endif()
if(INSTALL_FROM)
  file(REMOVE_RECURSE ${STAGE_DIR})
  step(${CMAKE_COMMAND} --install ${INSTALL_FROM} --prefix ${STAGE_DIR})
  list(APPEND configure_args -DCMAKE_PREFIX_PATH=${STAGE_DIR})
endif()

step(${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} ${configure_args})
step(${CMAKE_COMMAND} --build ${BINARY_DIR})
step(${BINARY_DIR}/consumer)
