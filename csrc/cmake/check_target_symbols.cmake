# The per-target rule, checked on every build (see csrc/README.md): every external
# symbol that a per-target object file defines must belong to that target's namespace
# gumbel_softmax::<target> (its mangled name contains "14gumbel_softmax<n><target>", which
# also covers std templates instantiated with this namespace's types and lambdas).
# Anything else, say std::vector<float>::_M_default_append compiled with -mavx512f, is a
# weak symbol that the linker may pick for the baseline code too: the build fails.
#   cmake -DNM=<nm> -DTARGET=<name> -DOBJECTS=<a;b;...> -P check_target_symbols.cmake
string(LENGTH "${TARGET}" len)
set(ns "14gumbel_softmax${len}${TARGET}")
# DW.ref.__gxx_personality_v0: a pointer to the EH personality (data);
# __clang_call_terminate: Clang's two-instruction call of std::terminate.
set(allowed "DW.ref.__gxx_personality_v0" "__clang_call_terminate")
set(bad "")
foreach(obj IN LISTS OBJECTS)
  execute_process(COMMAND "${NM}" -g "${obj}" OUTPUT_VARIABLE out RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "check_target_symbols: ${NM} -g ${obj} failed")
  endif()
  string(REPLACE "\n" ";" lines "${out}")
  foreach(line IN LISTS lines)
    # "<value> <type> <name>" for defined symbols ("<type> <name>" for undefined ones)
    if(line MATCHES "^[0-9a-fA-F]+ ([A-Za-z]) (.+)$")
      set(name "${CMAKE_MATCH_2}")
      if(NOT name MATCHES "${ns}" AND NOT name IN_LIST allowed)
        list(APPEND bad "${obj}: ${name}")
      endif()
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " msg)
  message(FATAL_ERROR "Per-target objects define symbols outside gumbel_softmax::${TARGET} "
                      "(see csrc/README.md, the per-target rule):\n  ${msg}")
endif()
