"""The output bits are pinned per stream version (docs/contract.md, "Stream version").

``tests/golden.py`` digests (sha256) the output bytes of every public function (the
NumPy API, the layer, the noise, ``philox4x32``, and the torch, JAX and Dask wrappers)
over a compact set of inputs that covers every row path, dtype, tau kind, mask, special
value and way of passing ``rng``.  The NumPy and bfloat16 groups run in one interpreter
per SIMD target this CPU supports, each with 1 and 2 threads; the wrappers run here with
1 and 2 threads.  Every configuration must give the digests pinned for
``gs.STREAM_VERSION`` in ``tests/data/golden_digests.json``: the same version, the same
bits.  A deliberate change of bits bumps the version, adds a CHANGELOG.md entry and
regenerates the pin (``python tests/golden.py --save``); the failure message says so.

This pins stability, not correctness: the other test modules check the outputs against
references.
"""

from __future__ import annotations

import re
from pathlib import Path

import golden
import gumbel_softmax as gs
import pytest

CHANGELOG = Path(__file__).resolve().parent.parent / "CHANGELOG.md"


@pytest.fixture(scope="module")
def configs():
    return golden.compute_all()


@pytest.fixture(scope="module")
def pinned():
    return golden.load_pinned()


def test_pinned_version_is_the_stream_version(pinned):
    assert pinned["stream_version"] == gs.STREAM_VERSION, (
        f"tests/data/golden_digests.json pins stream version {pinned['stream_version']}, "
        f"the package says {gs.STREAM_VERSION}: regenerate with `{golden.REGENERATE}`"
    )


def test_stream_version_is_a_positive_int():
    assert type(gs.STREAM_VERSION) is int and gs.STREAM_VERSION >= 1
    assert "STREAM_VERSION" in gs.__all__


def test_changelog_has_an_entry_for_the_stream_version():
    if not CHANGELOG.exists():
        pytest.fail(f"{CHANGELOG} not found: run the suite from the source tree")
    text = CHANGELOG.read_text(encoding="utf-8")
    versions = [int(v) for v in re.findall(r"^#+ .*[Ss]tream version (\d+)\b", text, flags=re.M)]
    assert gs.STREAM_VERSION in versions, (
        f"CHANGELOG.md has no heading naming 'stream version {gs.STREAM_VERSION}' "
        f"(found {versions}): add one saying which bits changed and why"
    )
    assert max(versions) == gs.STREAM_VERSION, (
        f"CHANGELOG.md names stream version {max(versions)}, above gs.STREAM_VERSION"
    )


@pytest.mark.parametrize("group", golden.GROUPS)
def test_output_bits_match_the_pinned_digests(configs, pinned, group):
    """Every target and thread count gives the pinned digests of the current version."""
    ran = {cfg: groups[group] for cfg, groups in configs.items() if group in groups}
    skipped = {cfg: d["skipped"] for cfg, d in ran.items() if "skipped" in d}
    if skipped and len(skipped) == len(ran):
        pytest.skip(next(iter(skipped.values())))
    want = pinned["groups"].get(group)
    assert want, f"no digests pinned for the {group} group: regenerate with `{golden.REGENERATE}`"
    problems = []
    for cfg, got in ran.items():
        if "skipped" in got:
            continue
        diff = golden.differences(got, want)
        if diff:
            shown = ", ".join(diff[:12]) + (f", ... ({len(diff)} in all)" if len(diff) > 12 else "")
            problems.append(f"{cfg}: {shown}")
    if problems:
        # tell a change of bits everywhere from a disagreement between configurations
        results = [got for got in ran.values() if "skipped" not in got]
        agree = all(r == results[0] for r in results)
        head = (
            "every target and thread count gives the same new bits"
            if agree
            else "targets or thread counts DISAGREE (a bug: same version, same bits everywhere)"
        )
        pytest.fail(
            f"{group}: sections whose output bits differ from the pin of stream version "
            f"{gs.STREAM_VERSION}; {head}:\n  "
            + "\n  ".join(problems)
            + "\n"
            + golden.policy_message(gs.STREAM_VERSION)
        )


def test_every_supported_target_and_thread_count_ran(configs):
    for t in gs.cpu_targets():
        for nt in golden.THREADS:
            assert f"{t}/{nt} threads" in configs


def test_digest_sees_a_one_bit_change():
    """The digest is not vacuous: one flipped bit, a reshape or a dtype change alters it."""
    import numpy as np

    a = np.arange(6, dtype=np.float32)
    b = a.copy()
    b.view(np.uint32)[3] ^= 1
    variants = [a, b, a.reshape(2, 3), a.astype(np.float64)]
    digests = []
    for v in variants:
        d = golden.Digest()
        d.add("s", v)
        digests.append(d.result()["s"])
    assert len(set(digests)) == len(variants)
