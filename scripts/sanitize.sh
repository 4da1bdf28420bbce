#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer build of the extension, then the whole
# test suite against it.  One command, from anywhere:
#
#     bash scripts/sanitize.sh [pytest arguments]
#
# Exit status 0 means the suite passed with no sanitizer report and LeakSanitizer's
# exit-time scan completed; any report, or a failure of the scan, fails it.
# Needs GCC (the sanitizer runtimes are preloaded from the built module's own links).
#
# Environment (all optional):
#   SANITIZE_VENV   virtual environment to use (default .venv-sanitize; kept between
#                   runs, with build/sanitize, so a second run rebuilds only what changed)
#   SANITIZE_PEERS  1 (default): install the optional peers that .ci/run installs
#                   (.ci/peers.txt: torch's CPU build, JAX, Dask, ml_dtypes, reinmax,
#                   scikit-learn, matplotlib), so that their tests run under the
#                   sanitizers too; 0: leave them out (those tests then skip); anything
#                   else: those requirements, separated by spaces
#   SANITIZE_PEERS_DIR  instead of installing SANITIZE_PEERS: a directory of packages
#                   installed with `pip install --target`, put on the environment's
#                   sys.path after its site-packages (scripts/link_peers.py; .ci/run
#                   installs its peers once there)
#   SANITIZE_TARGETS  the SIMD kernel sets to build, e.g. "baseline;avx2", in their own
#                   build directory build/sanitize-baseline-avx2 (default: every one the
#                   compiler can build, in build/sanitize); .ci/run passes those this CPU
#                   runs, as a kernel set the CPU cannot run never executes here
#   SANITIZE_SHARDS run the suite as this many pytest processes side by side
#                   (scripts/pytest_shards.py; default 1: one process)
#
# What is checked:
#   - All of the package's C++ (bindings, dispatch, every SIMD kernel set, or those of
#     SANITIZE_TARGETS) is built with
#     -fsanitize=address,undefined -fno-omit-frame-pointer at -O1 -g, without NDEBUG, and
#     with -D_GLIBCXX_ASSERTIONS (bounds-checked std::vector::operator[] and friends).
#     -fno-var-tracking: reports keep their file, line and inlined frames, only the
#     locations of local variables for a debugger are left out; GCC's variable tracking
#     took about 60% of this build (the baseline kernels' reinmax.cpp: 98 s, 34 s without).
#   - -fno-sanitize=object-size: UBSan's object-size check compares an access with
#     __builtin_object_size of the whole object it can see at compile time, a subset of
#     what ASan's redzones catch at run time (heap, stack and globals; ASan's check, on
#     every access, stays); it took about a fifth of the compile time of the heaviest
#     files (the baseline kernels' reinmax.cpp, one job at a time, two runs each:
#     113 and 100 s with it, 87 and 79 s without).  UBSan's bounds check, which does
#     catch what ASan cannot (an index past an array inside a struct), stays.
#   - -fno-sanitize-recover=undefined: undefined behaviour aborts the process, so it
#     fails a test or pytest itself instead of being printed into captured output.
#     ASan errors always abort (halt_on_error).  pytest runs with -s so that a report
#     from the pytest process itself reaches the terminal (with SANITIZE_SHARDS > 1,
#     shard 0's as it comes, the other shards' when all have finished, and all of them
#     in $build_dir/shards/shard-*.log); reports from the subprocesses that tests start
#     appear in those tests' failure messages.
#   - ASan: heap, stack and global overflows, use after free, use after return
#     (detect_stack_use_after_return=1), double free, initialisation order.
#   - LeakSanitizer stays on.  PYTHONMALLOC=malloc sends Python's objects through malloc,
#     so ASan also sees them and LSan can follow pointers held by Python objects (with
#     pymalloc, a C++ object owned by a live Python object looks leaked).  The objects
#     CPython, NumPy, SciPy and PyTorch still hold at exit are suppressed by
#     scripts/lsan.supp, by their allocation sites: CPython's object allocators, which
#     never run our code, and those libraries' own modules, which never call into it.
#     Nothing there names this package, so a leak of its C++ allocations is reported.
#   - The leak scan completes or the run fails: before the suite, a process that drops
#     heap blocks must get them reported in this same setting; after it, a crash of
#     LeakSanitizer's own tracer at exit fails the run like a report.  The tracer crash
#     seen before (a runtime bug in reading dynamic TLS, below) is avoided with
#     intercept_tls_get_addr=0.
#
# What is not checked, and why:
#   - Python itself, NumPy, SciPy and the peers are not instrumented (they are the
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
build_dir=build/sanitize  # one per set of kernels: GUMBEL_SOFTMAX_TARGETS is cached
targets=()
if [ -n "${SANITIZE_TARGETS:-}" ]; then
  build_dir=$build_dir-${SANITIZE_TARGETS//;/-}
  targets=(-Ccmake.define.GUMBEL_SOFTMAX_TARGETS="$SANITIZE_TARGETS")
fi
python3 -m venv "$venv"
py=$venv/bin/python

# The build backend (pyproject.toml's build-system.requires) and the test extra; the
# extension itself is built without isolation so that build/sanitize stays valid.
"$py" -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
if [ -n "${SANITIZE_PEERS_DIR:-}" ]; then
  "$py" scripts/link_peers.py "$SANITIZE_PEERS_DIR"
else
  case ${SANITIZE_PEERS:-1} in
    0) ;;
    1) "$py" -m pip install -q -r .ci/peers.txt ;;
    *)
      read -r -a peers <<<"$SANITIZE_PEERS"
      "$py" -m pip install -q "${peers[@]}"
      ;;
  esac
fi
san="-fsanitize=address,undefined -fno-sanitize=object-size -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
"$py" -m pip install -q --no-build-isolation ".[test]" \
  -Cbuild-dir="$build_dir" \
  -Ccmake.build-type=RelWithDebInfo \
  -Ccmake.define.CMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g -fno-var-tracking" \
  -Ccmake.define.CMAKE_CXX_FLAGS="$san -D_GLIBCXX_ASSERTIONS" \
  -Ccmake.define.CMAKE_MODULE_LINKER_FLAGS="-fsanitize=address,undefined" \
  -Ccmake.define.CMAKE_SHARED_LINKER_FLAGS="-fsanitize=address,undefined" "${targets[@]}"

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

# LeakSanitizer options (ASAN_OPTIONS, read by every process the suite starts too):
# - intercept_tls_get_addr=0: GCC 12's runtime (fixed upstream in LLVM in 2023)
#   intercepts __tls_get_addr to learn where each thread's dynamic TLS blocks are, and
#   guesses a block's bounds from a glibc <= 2.24 header: a block starting at page offset
#   16 is taken to have that header, and the 16 bytes before it, which since glibc 2.25
#   are ASan's own header of the malloc'd block, are read as its start and size (the
#   start read is the allocating thread's number << 32 plus the allocation stack's id,
#   so for the main thread a small number such as 0x6c30).  LeakSanitizer's tracer then
#   scans that made-up range at exit and dies ("Tracer caught signal 11: addr=0x6c30
#   ... LeakSanitizer has encountered a fatal error"): the leak scan never ran.  Whether
#   a block lands at offset 16 depends on the heap's history, hence a crash in some runs
#   only.  Without the interceptor the tracer still finds those blocks: they are
#   malloc'd, and glibc's per-thread table of them (the DTV) is reached from the
#   thread's static TLS; a leak is still reported (see the check below), and a pointer
#   held only in dynamic TLS still counts as reachable.
# - allocator_may_return_null=1: malloc returns NULL for a request it cannot meet, as
#   without ASan, so that NumPy raises MemoryError (tests/test_failed_calls.py asks for
#   results of 2**42 elements) instead of ASan aborting on "allocation-size-too-big".
# - exitcode=23: a process in which a sanitizer found an error (a report, or a failed
#   leak scan) exits with 23, which no test takes for an ordinary failure
#   (tests/test_exhaustive.py accepts a worker's exit status 1).
# - CXX: torch.compile's inductor compiles C++ with $CXX (default g++). The compiler is
#   not ours and leaks by design (it exits at once), so under the preloaded runtime its
#   leak reports fail the compile; it runs through a wrapper that drops LD_PRELOAD.
cxx_wrapper=$root/$build_dir/cxx-unsanitized
printf '#!/bin/sh\nunset LD_PRELOAD\nexec %s "$@"\n' "${CXX:-g++}" >"$cxx_wrapper"
chmod +x "$cxx_wrapper"
lsan_env=(LD_PRELOAD="$libasan $libstdcxx"
  CXX="$cxx_wrapper"
  PYTHONMALLOC=malloc
  ASAN_OPTIONS="detect_leaks=1:intercept_tls_get_addr=0:allocator_may_return_null=1:exitcode=23:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
  LSAN_OPTIONS="suppressions=$root/scripts/lsan.supp:print_suppressions=0"
  UBSAN_OPTIONS="print_stacktrace=1:report_error_type=1")

# First, that leak detection works in exactly this setting (preload, options,
# suppressions): a process that drops 64 blocks of 4242 bytes must exit non-zero with
# them reported (a leak of 4242 x N bytes in N objects).  A setting in which the scan
# reported nothing would otherwise pass silently.
canary=$build_dir/lsan-canary.log
canary_status=0
env "${lsan_env[@]}" "$py" -c '
import ctypes
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
for _ in range(64):
    libc.malloc(4242)
' >"$canary" 2>&1 || canary_status=$?
if [ "$canary_status" -eq 0 ] ||
   ! awk '/^Direct leak of [0-9]+ byte\(s\) in [0-9]+ object\(s\)/ {
            if ($4 == 4242 * $7) found = 1 } END { exit !found }' "$canary"; then
  cat "$canary" >&2
  echo "sanitize.sh: LeakSanitizer did not report a planted leak (exit status" \
       "$canary_status, log: $canary): leak detection does not work in this setting" >&2
  exit 2
fi
echo "sanitize.sh: LeakSanitizer reports a planted leak in this setting (log: $canary)"

log=$build_dir/pytest.log
echo "sanitize.sh: running the test suite under ASan + UBSan (log: $log)"
status=0
env "${lsan_env[@]}" "$py" scripts/pytest_shards.py --shards "${SANITIZE_SHARDS:-1}" \
  --log-dir "$build_dir/shards" -s -p no:cacheprovider "$@" 2>&1 | tee "$log" || status=$?
# Any report fails the run, and so does a crash of LeakSanitizer's own tracer ("has
# encountered a fatal error"): then the leak scan did not complete.  (LeakSanitizer
# also sets a non-zero exit status for both.)
if grep -qE "runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)" "$log" ||
   grep -q "LeakSanitizer has encountered a fatal error" "$log"; then
  echo "sanitize.sh: sanitizer report(s) or a LeakSanitizer failure above (also in $log)" >&2
  [ "$status" -ne 0 ] || status=1
fi
[ "$status" -eq 0 ] && echo "sanitize.sh: no sanitizer report; the exit-time leak scan completed"
exit "$status"
