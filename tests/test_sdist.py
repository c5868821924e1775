"""The source distribution ships a test tree that runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
JUNK = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.pyc", "*.egg-info", "build",
                              "dist", ".pytest_cache", ".ruff_cache", ".hypothesis",
                              ".benchmarks", "bench-results", "*.npz")


def _source_tree(into: Path) -> Path:
    """What a fresh clone holds (git's tracked files), or this tree without build junk."""
    into.mkdir()
    try:
        files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                               check=True).stdout.decode().split("\0")
    except (OSError, subprocess.CalledProcessError):
        shutil.rmtree(into)
        shutil.copytree(ROOT, into, ignore=JUNK)
        return into
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, into / name)
    return into


@pytest.mark.slow
def test_the_sdist_carries_a_test_tree_that_runs(tmp_path):
    pytest.importorskip("setuptools")
    source = _source_tree(tmp_path / "source")
    # The build backend's own hook, in this environment: no network, no isolation.
    build = subprocess.run(
        [sys.executable, "-c", "import sys; from setuptools import build_meta; "
         "print(build_meta.build_sdist(sys.argv[1]))", str(tmp_path / "dist")],
        cwd=source, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    sdist = tmp_path / "dist" / build.stdout.split()[-1]
    with tarfile.open(sdist) as tar:
        names = tar.getnames()
        safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(tmp_path / "unpacked", **safe)
    top = names[0].split("/")[0]
    shipped = {n.split("/", 1)[1] for n in names if "/" in n}
    wanted = {str(p.relative_to(source)) for d in ("tests", "examples")
              for p in (source / d).rglob("*.py")}
    assert wanted <= shipped, sorted(wanted - shipped)
    assert {"tests/conftest.py", "tests/helpers.py", "tests/__init__.py"} <= shipped
    assert "bpnet/py.typed" in shipped  # PEP 561: type checkers read bpnet's annotations
    assert not [n for n in shipped if "__pycache__" in n or n.endswith(".pyc")]
    unpacked = tmp_path / "unpacked" / top
    env = dict(os.environ, PYTHONPATH=str(unpacked))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_data.py",
         "tests/test_architecture.py", "tests/test_examples.py", "-k", "not (digits or times)"],
        cwd=unpacked, env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "error" not in run.stdout.splitlines()[-1]
    probe = subprocess.run([sys.executable, "-c", "import bpnet; print(bpnet.__file__)"],
                           cwd=unpacked, env=env, capture_output=True, text=True)
    assert Path(probe.stdout.strip()).is_relative_to(unpacked)  # the sdist's own bpnet ran
