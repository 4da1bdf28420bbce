#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the extension, then the whole
# test suite against it.  One command, from anywhere:
#
#     bash scripts/sanitize.sh [pytest arguments]
#
# Exit status 0 means the suite passed with no sanitizer report; any report fails it.
# Needs GCC (the sanitizer runtimes are preloaded from the built module's own links).
#
# Environment (all optional):
#   SANITIZE_VENV   virtual environment to use (default .venv-sanitize; kept between
#                   runs, with build/sanitize, so a second run rebuilds only what changed)
#   SANITIZE_TORCH  1 (default): install torch's CPU build and ml_dtypes so the parity
#                   and bfloat16 tests run too;
#                   0: leave it out (those tests then skip)
#
# What is checked:
#   - All of the package's C++ (bindings, dispatch, every SIMD kernel set) is built with
#     -fsanitize=address,undefined -fno-omit-frame-pointer at -O1 -g, without NDEBUG, and
#     with -D_GLIBCXX_ASSERTIONS (bounds-checked std::vector::operator[] and friends).
#   - -fno-sanitize-recover=undefined: undefined behaviour aborts the process, so it
#     fails a test or pytest itself instead of being printed into captured output.
#     ASan errors always abort (halt_on_error).  pytest runs with -s so that a report
#     from the pytest process itself reaches the terminal; reports from the subprocesses
#     that tests start appear in those tests' failure messages.
#   - ASan: heap, stack and global overflows, use after free, use after return
#     (detect_stack_use_after_return=1), double free, initialisation order.
#   - LeakSanitizer stays on.  PYTHONMALLOC=malloc sends Python's objects through malloc,
#     so ASan also sees them and LSan can follow pointers held by Python objects (with
#     pymalloc, a C++ object owned by a live Python object looks leaked).  The objects
#     CPython, NumPy, SciPy and PyTorch still hold at exit are suppressed by
#     scripts/lsan.supp, by their allocation sites: CPython's object allocators, which
#     never run our code, and those libraries' own modules, which never call into it.
#     Nothing there names this package, so a leak of its C++ allocations is reported.
#
# What is not checked, and why:
#   - Python itself, NumPy, SciPy and PyTorch are not instrumented (they are the
#     installed builds); ASan still checks every access our code makes to their memory.
#   - A Python object leaked by a reference-count error is not attributed to this
#     package: CPython is built without frame pointers, so the stack of an allocation
#     made by CPython's allocator stops inside CPython and such leaks are suppressed with
#     the interpreter's own.
#   - -fsanitize=float-divide-by-zero and float-cast-overflow are not part of
#     -fsanitize=undefined: IEEE division by zero (inf, NaN) is well defined here.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

venv=${SANITIZE_VENV:-.venv-sanitize}
build_dir=build/sanitize
python3 -m venv "$venv"
py=$venv/bin/python

# The build backend (pyproject.toml's build-system.requires) and the test extra; the
# extension itself is built without isolation so that build/sanitize stays valid.
"$py" -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
if [ "${SANITIZE_TORCH:-1}" = 1 ]; then
  "$py" -m pip install -q "torch==2.13.0" "ml_dtypes>=0.2"  # the CPU build, as in .ci/run
fi
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
"$py" -m pip install -q --no-build-isolation ".[test]" \
  -Cbuild-dir="$build_dir" \
  -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.CMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" \
  -Ccmake.define.CMAKE_CXX_FLAGS="$san -D_GLIBCXX_ASSERTIONS" \
  -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -Ccmake.define.CMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined"

# Python is not instrumented, so the ASan runtime must be loaded first (LD_PRELOAD), and
# with it libstdc++: otherwise ASan cannot find the real __cxa_throw when it starts and
# the first C++ exception aborts.  Both are taken from what the module links.
# (Importing the module here, without the preload, would abort: ASan must come first.)
site=$("$py" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")
module=$(ls "$site"/gumbel_softmax/_core*.so)
libasan=$(ldd "$module" | awk '/libasan/ {print $3}')
libstdcxx=$(ldd "$module" | awk '/libstdc\+\+/ {print $3}')
if [ -z "$libasan" ] || [ -z "$libstdcxx" ]; then
  echo "sanitize.sh: $module does not link libasan and libstdc++ (a GCC build is needed)" >&2
  exit 2
fi

run_suite() {  # run_suite LOG [pytest arguments]: the suite under the sanitizers
  local log=$1
  shift
  echo "sanitize.sh: running the test suite under ASan + UBSan (log: $log)"
  env LD_PRELOAD="$libasan $libstdcxx" \
    PYTHONMALLOC=malloc \
    ASAN_OPTIONS="detect_leaks=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1" \
    LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0" \
    UBSAN_OPTIONS="print_stacktrace=1:report_error_type=1" \
    "$py" -m pytest -s -p no:cacheprovider "$@" 2>&1 | tee "$log"
}

# tracer_crash_only LOG: the suite passed with no sanitizer report, and LeakSanitizer's
# tracer crashed at exit (below).
tracer_crash_only() {
  grep -q "LeakSanitizer has encountered a fatal error" "$1" &&
    ! grep -qE "runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)" "$1" &&
    grep -qE "^=+ [0-9]+ passed.* in [0-9.]+s" "$1" &&
    ! grep -qE "^=+ .*[0-9]+ (failed|error)" "$1"
}

log=$build_dir/pytest.log
status=0
run_suite "$log" "$@" || status=$?
# LeakSanitizer's own tracer, which stops every thread at exit to scan for leaks, can
# crash ("Tracer caught signal 11 ... LeakSanitizer has encountered a fatal error"):
# a failure of the tool, seen once in CI after a clean run of the whole suite, not a
# report.  Then, and only when nothing else went wrong (the suite passed, no sanitizer
# report), the whole run is repeated once, leak check included; its result stands.
if tracer_crash_only "$log"; then
  echo "sanitize.sh: LeakSanitizer's tracer crashed at exit (a tool failure, no report);" \
       "running the suite once more" >&2
  log=$build_dir/pytest-retry.log
  status=0
  run_suite "$log" "$@" || status=$?
fi
# If the tracer crashes again after another clean run, the leak scan is inconclusive:
# said loudly, but not a failure (ASan and UBSan checked every test; a leak report, a
# failed test or any other error still fails).  Seen on 2026-12-04 in three runs out
# of four; under investigation (README, "Reliability checks").
if tracer_crash_only "$log"; then
  echo "sanitize.sh: WARNING: LeakSanitizer's tracer crashed at exit again; the exit-time" \
       "leak scan is inconclusive (ASan and UBSan: no report, every test passed)" >&2
  exit 0
fi
if grep -qE "runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)" "$log" ||
   grep -q "LeakSanitizer has encountered a fatal error" "$log"; then
  echo "sanitize.sh: sanitizer report(s) above (also in $log)" >&2
  [ "$status" -ne 0 ] || status=1
fi
[ "$status" -eq 0 ] && echo "sanitize.sh: no sanitizer report"
exit "$status"
