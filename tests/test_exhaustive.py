"""The bits-to-noise map on all 2**32 float32 words, on every SIMD target.

For each target that this machine supports, a fresh interpreter runs
``tests/exhaustive_noise.py --target T`` (the worker; run it by hand the same way), which
applies the float32 map to every word in the order of the uniform it represents and checks
that all values are finite, never decrease, span at least [-3.1, 22.0] and stay within the
formula's range, and that a sparse sample matches ``reference.gumbel_from_bits_ref``; and
checks the float64 map at its extremes and on 10**8 random words (finite, in range,
non-decreasing in U, a sample against the reference). Each run digests the values; the
digests must be equal across targets (bitwise equal noise).

The targets run one after the other; each worker computes the noise on all the CPUs
available (at most 8 threads).
"""

from __future__ import annotations

import json
import logging
import os

import gumbel_softmax as gs
import pytest
from helpers import child_env, run_python_file

WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "exhaustive_noise.py")
TIMEOUT_S = 3600  # per target

log = logging.getLogger(__name__)


def _run_worker(target: str, json_path: str) -> dict:
    env = child_env(drop=("GUMBEL_SOFTMAX_TARGET",))
    proc = run_python_file(
        WORKER, "--target", target, "--json", json_path, "--quiet", env=env, timeout=TIMEOUT_S
    )
    # exit status 1 means checks failed (the report says which); anything else is a crash
    assert proc.returncode in (0, 1) and os.path.exists(json_path), (
        f"worker for {target} exited with {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    )
    with open(json_path, encoding="utf-8") as f:
        report = json.load(f)
    report["summary"] = proc.stdout
    return report


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("exhaustive")
    out = {}
    for t in gs.cpu_targets():
        out[t] = _run_worker(t, str(tmp / f"{t}.json"))
        log.info("exhaustive noise check, %s:\n%s", t, out[t]["summary"])
    return out


@pytest.mark.exhaustive
@pytest.mark.parametrize("target", ["baseline", "avx2", "avx512"])
def test_noise_map_on_target(reports, target):
    if target not in reports:
        pytest.skip(f"{target} is not supported on this machine ({gs.cpu_targets()})")
    r = reports[target]
    assert r["target"] == target
    assert r["ok"], f"{target}:\n" + "\n".join(r["failures"])
    f32 = r["f32"]
    assert f32["count"] == 2**32
    assert f32["nonfinite_count"] == 0 and f32["decreasing_count"] == 0
    assert f32["min"] <= -3.1 and f32["max"] >= 22.0
    assert f32["reference"]["checked"] > 10**6 and f32["reference"]["failures_count"] == 0
    for part in ("extremes", "random"):
        f64 = r["f64"][part]
        assert f64["nonfinite_count"] == 0 and f64["decreasing_count"] == 0
        assert f64["reference"]["failures_count"] == 0
    assert r["f64"]["random"]["count"] == 10**8


@pytest.mark.exhaustive
def test_digests_equal_across_targets(reports):
    digests = {
        t: (r["f32"]["digest"], r["f64"]["extremes"]["digest"], r["f64"]["random"]["digest"])
        for t, r in reports.items()
    }
    first = next(iter(digests))
    for t, d in digests.items():
        for name, a, b in zip(("float32", "float64 extremes", "float64 random"), digests[first], d):
            assert a == b, f"{name} noise differs between {first} and {t}: {a} != {b}"


def test_checker_reports_offending_words():
    """The worker's checker is not vacuous: a NaN, an infinity, a decrease inside a chunk
    and one across chunks are each reported with their words (a fast test)."""
    import numpy as np
    from exhaustive_noise import OrderedChecker, failures_of, reference_check, u_key

    w = np.arange(40, dtype=np.uint32)
    g = np.linspace(-3, 20, 40).astype(np.float32)
    g[5] = np.nan
    g[12] = g[11] - 1  # decrease inside the first chunk
    g[25] = np.inf  # +inf inside the second chunk
    g[20] = g[19] - 0.5  # decrease across the chunk boundary (19 | 20)
    chk = OrderedChecker(32)
    chk.add(w[:20], g[:20])
    chk.add(w[20:], g[20:])
    r = chk.finish()
    assert [d["word"] for d in r["nonfinite"]] == ["0x00000005", "0x00000019"]
    assert [(d["word_a"], d["word_b"]) for d in r["decreasing"]] == [
        ("0x0000000b", "0x0000000c"),
        ("0x00000013", "0x00000014"),
        ("0x00000019", "0x0000001a"),
    ]
    # a clean chunk ending in +inf is caught by its finite-ends test
    chk = OrderedChecker(32)
    chk.add(w[:10], np.append(np.arange(9, dtype=np.float32), np.float32(np.inf)))
    r = chk.finish()
    assert r["nonfinite_count"] == 1 and r["nonfinite"][0]["word"] == "0x00000009"
    r["reference"] = reference_check(w[:3], np.zeros(3, np.float32), np.float32)
    r["count"] = 2**32
    fails = failures_of({"f32": r})
    assert any("non-finite" in f for f in fails) and any("reference" in f for f in fails)
    # u_key sorts words by U: the lower tail ascending, then the upper tail descending
    words = np.array([0x80000000, 0xFFFFFFFF, 0x7FFFFFFF, 0, 1, 0x80000001], dtype=np.uint32)
    assert [hex(x) for x in words[np.argsort(u_key(words))]] == [
        "0x0",
        "0x1",
        "0x7fffffff",
        "0xffffffff",
        "0x80000001",
        "0x80000000",
    ]
