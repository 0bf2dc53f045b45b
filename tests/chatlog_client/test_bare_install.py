"""The client SDK installs alone: ``pip install ./client`` into a bare venv, then its own tests pass."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[2] / "client"


@pytest.mark.slow
def test_client_installs_in_a_bare_venv_and_passes_its_tests(tmp_path: Path) -> None:
    """No server dependency comes along (no aiohttp, msgspec, numpy, pandas, pyarrow, apscheduler)."""
    # A copy, so that the build leaves nothing (build/, *.egg-info) in the repository.
    source = tmp_path / "client"
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    install = subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    listed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    )
    installed = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "chatlog-client" in installed
    assert not installed & {"aiohttp", "msgspec", "numpy", "pandas", "pyarrow", "apscheduler", "chatlog"}
    # Run from elsewhere, so the installed package is the one imported, not the repository's.
    where = subprocess.run(
        [python, "-c", "import chatlog_client; print(chatlog_client.__file__)"],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )
    assert where.stdout.strip().startswith(str(venv))
    tests = subprocess.run(
        [python, "-m", "unittest", "discover", "-s", str(source / "tests"), "-t", str(source / "tests"), "-v"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert tests.returncode == 0, tests.stderr[-3000:]
    assert "Ran 4 tests" in tests.stderr and tests.stderr.rstrip().endswith("OK")
