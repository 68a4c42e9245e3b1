"""Atomic file and directory writes: a failed call never leaves a half-written file behind.

The temporaries come from :mod:`tempfile`, which creates them private (0600 / 0700); they are given the
permissions an ordinary ``open()`` / ``mkdir()`` would (0666 / 0777 less the umask) before they take the
target's place, so a saved index or model is as readable as any other file its user writes.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tokenflow_rag.errors import ConfigError


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling path for a writer that wants a file name (matplotlib); on success it
    replaces ``path`` in one rename, on failure it is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_replaceable_dir(target: Path, marker: str, kind: str) -> Path:
    """Refuse an output directory that saving would wipe: a file, a directory of other things, or ``.``/``..``.

    Only a missing path, an empty directory, or a directory holding ``marker`` (a previous ``kind``) may be
    replaced. Called before long work starts, so a bad ``--out`` fails in a second, not after it.
    """
    target = Path(target)
    if target.name in ("", ".", ".."):
        raise ConfigError(f"{target} names no new directory; give the {kind} its own, e.g. ./my_{kind}")
    if target.exists():
        if not target.is_dir():
            raise ConfigError(
                f"{target} is a file, not a tokenflow {kind} directory; give the {kind} a new or empty one"
            )
        if any(target.iterdir()) and not (target / marker).is_file():
            raise ConfigError(
                f"{target} exists and is not a tokenflow {kind} directory (no {marker}); it would be replaced. "
                f"Choose a new or empty directory"
            )
    for parent in target.parents:
        if parent.exists() and not parent.is_dir():
            raise ConfigError(f"cannot create {target}: {parent} is a file")
    return target


@contextmanager
def atomic_directory(target: Path) -> Iterator[Path]:
    """Yield a temporary sibling directory; on success it replaces ``target`` in one rename.

    A previous ``target`` is moved aside first and deleted only once the new one is in place,
    so an interrupted or failed save leaves either the old directory or the new one, never a mix,
    and no temporary behind. Callers vet ``target`` first with :func:`check_replaceable_dir`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    backup = None
    try:
        yield tmp
        mask = _umask()
        os.chmod(tmp, 0o777 & ~mask)
        # Some writers create private files (safetensors 0.8 writes 0600): a saved model is readable like any file.
        for path in tmp.rglob("*"):
            if path.is_file() and not path.is_symlink():
                os.chmod(path, 0o666 & ~mask)
        if target.exists():
            backup = target.with_name(f".{target.name}.old-{os.getpid()}")
            _remove(backup)
            os.replace(target, backup)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if backup is not None and backup.exists() and not target.exists():
            os.replace(backup, target)  # the swap failed half-way: put the old one back
        raise
    if backup is not None:
        _remove(backup)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
