"""Make the packages of a directory importable in this virtual environment, after its own.

    VENV/bin/python scripts/link_peers.py DIR

DIR holds packages installed once with ``pip install --target DIR ...`` (.ci/run installs
the optional peers of .ci/peers.txt there: about 1.7 GB, 90-100 s on a 2-core machine).
This writes ``gs_ci_peers.pth`` into the environment's site-packages, naming DIR, so that
DIR comes on ``sys.path`` right after the environment's own site-packages: a package
installed in the environment itself (the package under test, or another version of a
peer) comes first.  pip in the environment reads DIR's ``*.dist-info`` like those of its
own site-packages, so a later ``pip install`` there installs only what DIR lacks and
never changes DIR ("outside environment").  DIR's own ``.pth`` files are not run (the
only one the peers bring is setuptools' distutils shim, and the environment has its own
setuptools).  It then checks, in a fresh interpreter of the environment, that DIR is on
``sys.path``.  Exit status 0 on success, 2 on a usage error or a failed check.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig

PTH = "gs_ci_peers.pth"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    peers = os.path.abspath(argv[1])
    if not os.path.isdir(peers):
        print(f"link_peers: {peers} is not a directory", file=sys.stderr)
        return 2
    if sys.prefix == sys.base_prefix:
        print(f"link_peers: {sys.executable} is not in a virtual environment", file=sys.stderr)
        return 2
    site = sysconfig.get_paths()["purelib"]
    pth = os.path.join(site, PTH)
    with open(pth, "w", encoding="utf-8") as f:
        f.write(peers + "\n")
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; print('\\n'.join(sys.path))"],
        capture_output=True,
        text=True,
        check=True,
    )
    path = probe.stdout.splitlines()
    if peers not in path or site not in path or path.index(site) > path.index(peers):
        print(f"link_peers: {peers} is not on sys.path after {site}: {path}", file=sys.stderr)
        return 2
    print(f"link_peers: {peers} on sys.path of {sys.prefix} ({pth})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
