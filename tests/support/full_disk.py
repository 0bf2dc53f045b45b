"""A really full filesystem for tests: a 2 MiB tmpfs, and a way to fill it to the last byte."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def small_fs(short_dir: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs mounted for the test, unmounted after it."""
    mount_point = short_dir / "small"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.fail("no mount(8) here: the full-disk test needs a filesystem it can fill (run as root)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"cannot mount a 2 MiB tmpfs (needs root/CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        if subprocess.run(["umount", str(mount_point)], capture_output=True, check=False).returncode:
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)


def fill(path: Path) -> None:
    """Write ``path`` until the filesystem has no byte left."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 65536
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        while True:
            try:
                os.write(fd, b"\0" * 512)
            except OSError:
                return
    finally:
        os.close(fd)
