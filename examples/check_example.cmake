# Runs one example (cmake -DEXAMPLE=<program> -DEXPECT=<regex>
# [-DARGUMENTS=<space-separated arguments>] -P this file)
# and fails unless it exits with 0 and its output matches EXPECT: the exit
# status catches a sanitizer report printed after the result line, the
# regex a wrong result line.
separate_arguments(arguments UNIX_COMMAND "${ARGUMENTS}")
execute_process(COMMAND "${EXAMPLE}" ${arguments} OUTPUT_VARIABLE output ERROR_VARIABLE errors
                RESULT_VARIABLE status)
message("${output}${errors}")
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${EXAMPLE} exited with ${status}")
endif()
if(NOT output MATCHES "${EXPECT}")
  message(FATAL_ERROR "${EXAMPLE}: output does not match '${EXPECT}'")
endif()
