# Compiles SOURCE (with DEFINE, if given) and passes only when compilation fails and the first
# "error" line contains EXPECT. Run with cmake -P.
execute_process(
  COMMAND ${CXX} -std=c++20 -fsyntax-only -I${INCLUDE} ${DEFINE} ${SOURCE}
  RESULT_VARIABLE result
  OUTPUT_VARIABLE out
  ERROR_VARIABLE err)
if(result EQUAL 0)
  message(FATAL_ERROR "expected ${SOURCE} not to compile, but it compiled")
endif()
string(REPLACE ";" "<semicolon>" escaped "${err}")  # a CMake list splits on ';'
string(REPLACE "\n" ";" lines "${escaped}")
set(first "")
foreach(line IN LISTS lines)
  if(line MATCHES "error")
    string(REPLACE "<semicolon>" ";" first "${line}")
    break()
  endif()
endforeach()
string(FIND "${first}" "${EXPECT}" position)
if(position EQUAL -1)
  message(FATAL_ERROR "the first error line does not say\n  ${EXPECT}\nit is\n  ${first}\nfull output:\n${err}")
endif()
message(STATUS "first error: ${first}")
