"""The Makefile's system-package step on a fresh machine: tools missing, as root and via sudo.

CI runs `make test` as root on a machine that may lack chromium, docker-compose and
promtool. These tests run the real `system-deps` target on a PATH where none of them
exist and `apt-get` (and `sudo`) are stand-ins that record how they were called.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
MAKE = shutil.which("make")  # `make test` runs these: make is there

_RECORDER = """#!/bin/sh
echo "${{0##*/}} DEBIAN_FRONTEND=${{DEBIAN_FRONTEND:-}} $*" >> {log}
{then}
"""


def _stub(bin_dir: Path, name: str, log: Path, then: str = "exit 0") -> None:
    path = bin_dir / name
    path.write_text(_RECORDER.format(log=log, then=then))
    path.chmod(0o755)


def _fresh_path(tmp_path: Path, uid: int) -> tuple[Path, Path]:
    """A PATH holding only `env`, an `id` that reports ``uid``, and recording stand-ins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    env_binary = shutil.which("env")
    assert env_binary is not None
    (bin_dir / "env").symlink_to(env_binary)
    (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
    (bin_dir / "id").chmod(0o755)
    _stub(bin_dir, "apt-get", log)
    _stub(bin_dir, "sudo", log, then='exec "$@"')
    return bin_dir, log


def _run_system_deps(bin_dir: Path, *variables: str) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", "-C", str(REPO), "system-deps", *variables],
        env={"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")},
        capture_output=True, text=True, timeout=60,
    )


def test_root_installs_missing_tools_with_apt_get(tmp_path: Path) -> None:
    bin_dir, log = _fresh_path(tmp_path, uid=0)
    done = _run_system_deps(bin_dir)
    assert done.returncode == 0, done.stderr
    assert "installing chromium docker-compose promtool" in done.stdout
    calls = log.read_text().splitlines()
    assert calls[0] == "apt-get DEBIAN_FRONTEND=noninteractive update -qq"
    assert calls[1].startswith("apt-get DEBIAN_FRONTEND=noninteractive install -y -qq --no-install-recommends ")
    assert set(calls[1].split()[-5:]) == {"chromium", "docker-compose", "prometheus", "fonts-nanum", "postgresql"}
    assert not any(call.startswith("sudo") for call in calls)


def test_user_installs_missing_tools_through_sudo(tmp_path: Path) -> None:
    bin_dir, log = _fresh_path(tmp_path, uid=1000)
    done = _run_system_deps(bin_dir)
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    assert calls[0].startswith("sudo DEBIAN_FRONTEND= env DEBIAN_FRONTEND=noninteractive apt-get update")
    assert calls[1] == "apt-get DEBIAN_FRONTEND=noninteractive update -qq"
    assert any(call.startswith("apt-get DEBIAN_FRONTEND=noninteractive install") for call in calls)


def test_nothing_is_installed_when_every_tool_is_there(tmp_path: Path) -> None:
    bin_dir, log = _fresh_path(tmp_path, uid=0)
    for tool in ("chromium", "docker-compose", "promtool"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    done = _run_system_deps(bin_dir)
    assert done.returncode == 0, done.stderr
    if Path("/usr/share/fonts/truetype/nanum").is_dir():
        assert not log.exists()


def test_a_machine_without_postgresql_server_binaries_gets_them(tmp_path: Path) -> None:
    """Debian keeps initdb and pg_ctl off PATH: the check looks where the package puts them."""
    bin_dir, log = _fresh_path(tmp_path, uid=0)
    for tool in ("chromium", "docker-compose", "promtool"):
        (bin_dir / tool).write_text("#!/bin/sh\nexit 0\n")
        (bin_dir / tool).chmod(0o755)
    done = _run_system_deps(bin_dir, f"POSTGRES_PG_CTL={tmp_path}/nowhere/*/bin/pg_ctl")
    assert done.returncode == 0, done.stderr
    assert "postgresql" in done.stdout
    calls = log.read_text().splitlines()
    assert any(call.startswith("apt-get DEBIAN_FRONTEND=noninteractive install") for call in calls)
