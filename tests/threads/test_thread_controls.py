"""Thread controls: ``gs.set_num_threads`` / ``gs.get_num_threads``, ``OMP_NUM_THREADS``
and ``threadpoolctl.threadpool_limits``, with and without OpenMP.

What a call really ran on is read from ``gs._core._last_team_size()``: the number of
threads of the last loop over rows (OpenMP's ``omp_get_num_threads()`` inside the
parallel region, 1 for a serial loop), not the number that was asked for.
"""

import os
import sys
import textwrap

import gumbel_softmax as gs
import numpy as np
import pytest
from helpers import child_env, run_python

HAVE_OPENMP = gs._core.have_openmp
# Large enough for the kernels to go parallel (16 rows, 2**20 elements).
BIG = np.zeros((16, 2**16), np.float32)


def _team_of_big_call():
    gs.gumbel_softmax(BIG, 0.5, rng=0)
    return gs._core._last_team_size()


@pytest.fixture(autouse=True)
def follow_openmp():
    gs.set_num_threads(0)
    yield
    gs.set_num_threads(0)


def test_small_calls_are_serial():
    gs.gumbel_softmax(np.zeros((4, 10), np.float32), rng=0)
    assert gs._core._last_team_size() == 1


@pytest.mark.parametrize("n", [1, 2, 3])
def test_set_num_threads_sets_the_team(n):
    gs.set_num_threads(n)
    expected = n if HAVE_OPENMP else 1
    assert gs.get_num_threads() == expected
    assert _team_of_big_call() == expected


@pytest.mark.parametrize("reset", [0, None])
def test_set_num_threads_zero_follows_openmp_again(reset):
    default = gs.get_num_threads()
    gs.set_num_threads(3)
    gs.set_num_threads(reset)
    assert gs.get_num_threads() == default
    assert _team_of_big_call() == (min(default, BIG.shape[0]) if HAVE_OPENMP else 1)


def test_without_openmp_everything_is_one_thread():
    if HAVE_OPENMP:
        pytest.skip("this build has OpenMP; the build without it runs this test in CI")
    assert gs.get_num_threads() == 1
    gs.set_num_threads(4)
    assert gs.get_num_threads() == 1
    assert _team_of_big_call() == 1


def _threadpoolctl():
    return pytest.importorskip(
        "threadpoolctl", reason="threadpoolctl is not installed (pip install threadpoolctl)"
    )


@pytest.mark.parametrize("user_api", [None, "openmp"])
def test_threadpool_limits_one_limits_our_threads(user_api):
    threadpoolctl = _threadpoolctl()
    before = gs.get_num_threads()
    with threadpoolctl.threadpool_limits(limits=1, user_api=user_api):
        assert gs.get_num_threads() == 1
        assert _team_of_big_call() == 1
    assert gs.get_num_threads() == before
    assert _team_of_big_call() == (min(before, BIG.shape[0]) if HAVE_OPENMP else 1)


def test_threadpool_limits_two_gives_two():
    threadpoolctl = _threadpoolctl()
    if not HAVE_OPENMP:
        pytest.skip("a build without OpenMP is always serial (tested above)")
    with threadpoolctl.threadpool_limits(limits=1):
        with threadpoolctl.threadpool_limits(limits=2, user_api="openmp"):
            assert gs.get_num_threads() == 2
            assert _team_of_big_call() == 2


def test_threadpoolctl_sees_our_openmp_runtime():
    threadpoolctl = _threadpoolctl()
    if not HAVE_OPENMP:
        pytest.skip("a build without OpenMP links no OpenMP runtime")
    libs = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "openmp"]
    assert libs, "threadpoolctl found no OpenMP runtime, though _core uses one"
    if sys.platform.startswith("linux"):
        # the runtime _core links is among those threadpoolctl controls
        with open("/proc/self/maps") as f:
            mapped = {line.split()[-1] for line in f if "gomp" in line or "omp" in line}
        assert {os.path.realpath(i["filepath"]) for i in libs} & {
            os.path.realpath(m) for m in mapped
        }


def test_set_num_threads_overrides_threadpoolctl():
    """An explicit gs.set_num_threads(n) is the process-wide count until it is reset
    with 0 or None (docs/user-guide.md, "Threads and SIMD targets")."""
    threadpoolctl = _threadpoolctl()
    gs.set_num_threads(2)
    with threadpoolctl.threadpool_limits(limits=1):
        assert gs.get_num_threads() == (2 if HAVE_OPENMP else 1)
        gs.set_num_threads(0)
        assert gs.get_num_threads() == 1
        assert _team_of_big_call() == 1


def test_results_do_not_depend_on_the_limit():
    threadpoolctl = _threadpoolctl()
    x = np.random.default_rng(5).standard_normal((64, 4096)).astype(np.float32)
    full = gs.gumbel_softmax(x, 0.7, hard=True, return_soft=True, rng=9)
    with threadpoolctl.threadpool_limits(limits=1):
        one = gs.gumbel_softmax(x, 0.7, hard=True, return_soft=True, rng=9)
    for a, b in zip(full, one):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("omp", ["1", "2", "3"])
def test_omp_num_threads_environment(omp):
    code = textwrap.dedent(
        """
        import numpy as np, gumbel_softmax as gs
        gs.gumbel_softmax(np.zeros((16, 2**16), np.float32), rng=0)
        print(gs.get_num_threads(), gs._core._last_team_size())
        """
    )
    proc = run_python(code, env=child_env(OMP_NUM_THREADS=omp), timeout=None)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.split()
    expected = int(omp) if HAVE_OPENMP else 1
    assert [int(v) for v in out] == [expected, expected]


@pytest.mark.parametrize(
    "limit, omp, set_n", [("1", "2", 0), ("1", "2", 2), ("2", "3", 0), ("2", "1", 3), ("3", "2", 0)]
)
def test_omp_thread_limit_caps_the_reported_count(limit, omp, set_n):
    """OMP_THREAD_LIMIT caps the team a parallel region gets; get_num_threads reports
    that team (it reported OMP_NUM_THREADS, or set_num_threads' n, above the limit)."""
    code = textwrap.dedent(
        f"""
        import numpy as np, gumbel_softmax as gs
        gs.set_num_threads({set_n})
        gs.gumbel_softmax(np.zeros((16, 2**16), np.float32), rng=0)
        print(gs.get_num_threads(), gs._core._last_team_size())
        """
    )
    env = child_env(OMP_NUM_THREADS=omp, OMP_THREAD_LIMIT=limit)
    proc = run_python(code, env=env, timeout=None)
    assert proc.returncode == 0, proc.stderr
    asked = set_n or int(omp)
    expected = min(asked, int(limit)) if HAVE_OPENMP else 1
    assert [int(v) for v in proc.stdout.split()] == [expected, expected]


def _import_and_report(extra_env):
    """Import the package in a child with OMP_DISPLAY_ENV=VERBOSE (libgomp prints its
    settings to stderr when it loads) and return (GOMP_SPINCOUNT as libgomp read it or
    None, the child's os.environ value after the import or None, uses libgomp)."""
    env = child_env(
        drop=("GOMP_SPINCOUNT", "OMP_WAIT_POLICY", "OMP_DISPLAY_ENV"),
        same_path=True,
        OMP_DISPLAY_ENV="VERBOSE",
    )
    env.update(extra_env)
    code = textwrap.dedent("""
        import os, gumbel_softmax
        maps = open("/proc/self/maps").read() if os.path.exists("/proc/self/maps") else ""
        print(os.environ.get("GOMP_SPINCOUNT"), "libgomp" in maps)
    """)
    proc = run_python(code, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    after, gomp = proc.stdout.split()
    read = [
        line.split("=", 1)[1].strip().strip("'")
        for line in proc.stderr.splitlines()
        if line.strip().startswith("GOMP_SPINCOUNT")
    ]
    return (read[0] if read else None), (None if after == "None" else after), gomp == "True"


def test_libgomp_spin_count_is_short_and_the_environment_restored():
    """libgomp loaded with our import reads GOMP_SPINCOUNT = 1000 (docs/user-guide.md, "Threads and SIMD targets"), and
    the variable is gone again afterwards, so runtimes loaded later keep their default."""
    read, after, gomp = _import_and_report({})
    assert after is None
    if not (HAVE_OPENMP and gomp):
        pytest.skip("this build does not use GNU OpenMP (libgomp): nothing to set")
    assert read == "1000"


@pytest.mark.parametrize(
    "user_env, expect",
    [
        ({"GOMP_SPINCOUNT": "5"}, "5"),
        ({"OMP_WAIT_POLICY": "active"}, None),  # libgomp's own default for ACTIVE, not ours
    ],
)
def test_user_spin_settings_win(user_env, expect):
    read, after, gomp = _import_and_report(user_env)
    assert after == user_env.get("GOMP_SPINCOUNT")
    if not (HAVE_OPENMP and gomp):
        pytest.skip("this build does not use GNU OpenMP (libgomp)")
    if expect is None:
        assert read != "1000"
    else:
        assert read == expect
