"""Processes made by fork: every call completes in the child and equals the parent's.

GNU OpenMP's thread pool does not survive fork(): a call big enough for threads in the
child of a process whose calls had used threads would wait forever for it.  So the
package runs every call of a fork child on its calling thread (docs/reliability.md, "Processes,
threads and fork").  Each scenario runs in a fresh interpreter under a timeout, so that
a hang fails the test instead of stopping the suite; the children it forks have their
own timeout inside.
"""

import os
import subprocess
import textwrap

import gumbel_softmax as gs
import pytest
from helpers import run_python

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")

TIMEOUT = 120  # seconds for a whole scenario (each takes 1-10 s here)

# Every entry point, on arrays big enough for the kernels to use threads (2**18
# elements, many rows), float32 and float16 (converted in the kernels); CALLS(k) returns
# the results of call kind k as a list of arrays.
COMMON = textwrap.dedent(
    """
    import os, sys, time, threading, signal
    import numpy as np
    import gumbel_softmax as gs

    X = np.random.default_rng(0).standard_normal((4096, 64)).astype(np.float32)
    H = X.astype(np.float16)
    G = np.random.default_rng(1).standard_normal(X.shape).astype(np.float32)
    Y = gs.gumbel_softmax(X, 0.5, rng=3)
    TAUS = np.linspace(0.5, 2.0, X.shape[0])
    KINDS = ["soft", "hard", "log", "mask_tau", "categorical", "top_k", "backward",
             "recompute", "bernoulli", "bernoulli_backward", "gumbel", "logistic",
             "concrete", "half", "conditional", "subset", "subset_backward"]
    IDX = gs.categorical(X, rng=9)

    def call(kind, seed=7):
        rng = gs.Philox(seed, counter=5)
        if kind == "soft": return [gs.gumbel_softmax(X, 0.5, rng=rng)]
        if kind == "hard": return list(gs.gumbel_softmax(X, 0.5, hard=True, rng=rng, return_soft=True))
        if kind == "log": return [gs.log_gumbel_softmax(X, 0.7, rng=rng)]
        if kind == "mask_tau": return [gs.gumbel_softmax(X, TAUS, rng=rng, mask=X > -1)]
        if kind == "categorical": return [gs.categorical(X, rng=rng)]
        if kind == "top_k": return [gs.top_k(X, 3, rng=rng)]
        if kind == "backward": return [gs.gumbel_softmax_backward(G, Y, 0.5)]
        if kind == "recompute": return [gs.gumbel_softmax_backward(G, tau=0.5, logits=X, rng=rng)]
        if kind == "bernoulli": return list(gs.relaxed_bernoulli(X, 0.5, hard=True, rng=rng, return_soft=True))
        if kind == "bernoulli_backward": return [gs.relaxed_bernoulli_backward(G, Y, 0.5)]
        if kind == "gumbel": return [gs.gumbel(X.shape, rng=rng)]
        if kind == "logistic": return [gs.logistic(X.shape, dtype=np.float64, rng=rng)]
        if kind == "concrete": return [gs.concrete_log_prob(Y, X, 0.5)]
        if kind == "half": return [gs.gumbel_softmax(H, 0.5, rng=rng)]
        if kind == "conditional": return [gs.conditional_gumbel(X, IDX, rng=rng)]
        if kind == "subset": return list(gs.relaxed_top_k(X, 3, 0.5, hard=True, rng=rng, return_soft=True))
        if kind == "subset_backward": return [gs.relaxed_top_k_backward(G, X, 3, 0.5, rng=rng)]
        raise ValueError(kind)

    def same(a, b):
        return all(x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
                   for x, y in zip(a, b)) and len(a) == len(b)

    def wait_child(pid, timeout=60):
        # The child's exit status, or 'hang' after `timeout` seconds (then killed).
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return "hang"
    """
)


def _run(body):
    code = COMMON + textwrap.dedent(body)
    # Two OpenMP threads in the parent whatever an earlier test left in the environment,
    # so that the parent's calls really start libgomp's pool.
    full_env = dict(os.environ, OMP_NUM_THREADS="2")
    try:
        proc = run_python(code, env=full_env, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - the failure being tested
        pytest.fail(f"scenario hung (> {TIMEOUT} s): {exc.stdout!r} {exc.stderr!r}")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


@pytest.mark.parametrize("threads", [0, 1, 2])
def test_os_fork_every_entry_point(threads):
    """After parallel calls in the parent (threads=0: OpenMP's default team), each
    call kind in a forked child completes, on one thread, with the parent's bits."""
    out = _run(
        f"""
        gs.set_num_threads({threads})
        expected = {{k: call(k) for k in KINDS}}   # the parent's threads are now started
        gs.gumbel_softmax(X, rng=1)
        parent_team = gs._core._last_team_size()
        bad = []
        for k in KINDS:
            pid = os.fork()
            if pid == 0:
                ok = same(call(k), expected[k])
                one = gs._core._last_team_size() == 1 and gs.get_num_threads() == 1
                os._exit(0 if ok and one and gs._core._in_fork_child() else 3)
            status = wait_child(pid)
            if status != 0:
                bad.append((k, status))
        print("parent team", parent_team, "bad", bad)
        assert not bad, bad
        assert not gs._core._in_fork_child()
        """
    )
    team = int(out.split()[2])
    if gs._core.have_openmp and threads != 1:
        assert team > 1, "the parent must have used threads for the test to mean anything"


def test_fork_child_of_child_and_set_num_threads_in_child():
    """A grandchild also runs; set_num_threads in a child is accepted and keeps one
    thread there (the pool cannot come back after fork)."""
    _run(
        """
        expected = call("soft")
        pid = os.fork()
        if pid == 0:
            gs.set_num_threads(2)
            ok = same(call("soft"), expected) and gs.get_num_threads() == 1
            pid2 = os.fork()
            if pid2 == 0:
                os._exit(0 if same(call("soft"), expected) else 3)
            os._exit(0 if ok and wait_child(pid2) == 0 else 4)
        assert wait_child(pid) == 0
        assert same(call("soft"), expected)  # the parent keeps its threads
        """
    )


def test_fork_pool():
    """multiprocessing's "fork" start method (Linux's default before Python 3.14)."""
    _run(
        """
        import multiprocessing as mp
        expected = [call(k) for k in KINDS]
        with mp.get_context("fork").Pool(2) as pool:
            results = pool.map_async(call, KINDS).get(timeout=60)
        bad = [k for k, r, e in zip(KINDS, results, expected) if not same(r, e)]
        assert not bad, bad
        """
    )


def test_fork_while_another_thread_is_inside_a_call():
    """fork() from one thread while another is inside a parallel call: the child's
    calls complete (the busy thread and its team do not exist there)."""
    _run(
        """
        expected = {k: call(k) for k in ("soft", "recompute")}
        big = np.zeros((256, 2**14), np.float32)
        stop = threading.Event()
        def busy():
            while not stop.is_set():
                gs.gumbel_softmax(big, rng=1)
        t = threading.Thread(target=busy)
        t.start()
        time.sleep(0.2)
        bad = []
        for i in range(20):
            pid = os.fork()
            if pid == 0:
                os._exit(0 if all(same(call(k), e) for k, e in expected.items()) else 3)
            status = wait_child(pid)
            if status != 0:
                bad.append(status)
            time.sleep(0.01)
        stop.set()
        t.join()
        assert not bad, bad
        """
    )


@pytest.mark.parametrize("torch_first", [False, True])
def test_torch_dataloader_workers(torch_first):
    """A torch DataLoader with 2 fork workers whose dataset calls the package, after the
    parent used threads, in both import orders (the wheel bundles its own libgomp)."""
    pytest.importorskip("torch")
    first, second = ("torch", "gumbel_softmax") if torch_first else ("gumbel_softmax", "torch")
    _run(
        f"""
        import {first}, {second}
        import torch
        from torch.utils.data import DataLoader, Dataset
        torch.set_num_threads(2)
        torch.ones(512, 512) @ torch.ones(512, 512)  # torch's own pool in the parent
        expected = call("soft")                       # and ours
        class Rows(Dataset):
            def __len__(self):
                return 4
            def __getitem__(self, i):
                return torch.from_numpy(gs.gumbel_softmax(X, 0.5, rng=gs.Philox(7, counter=5))[i * 1024:(i + 1) * 1024].copy())
        loader = DataLoader(Rows(), batch_size=None, num_workers=2,
                            multiprocessing_context="fork", timeout=60)
        got = np.concatenate([b.numpy() for b in loader])
        assert got.tobytes() == expected[0].tobytes()
        """
    )
