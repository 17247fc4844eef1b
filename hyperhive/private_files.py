"""Files and folders only their owner can read: the SQLite store, ``.hyperhive/``, tokens, logs, caches.

What Hyperhive creates on disk holds searches, datasets, trial results, tokens and log lines with store
URLs, so it is created ``0600`` (files) and ``0700`` (folders) whatever the umask, the way the token file
is. Only what is *created* gets these modes: an existing file or folder keeps its permissions (an operator
who made a store group-readable for a shared workers' account meant it), neither loosened nor tightened.
On systems without POSIX modes (Windows) the modes are ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_dir(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder, creating it and any missing parents ``0700``; existing ones are left alone."""
    path = Path(path)
    missing: list[Path] = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # made meanwhile by another process: its mode is its creator's business
        os.chmod(d, DIR_MODE)  # mkdir's mode is masked by the umask; ours must not depend on it
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return path


def create_private_file(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and ``0600`` (its folder too, ``0700``) unless it exists; an existing file is
    left as it is. For files another library then opens (SQLite creates its WAL and SHM files with the
    database file's mode)."""
    path = Path(path)
    private_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return path
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


def open_private_append(path: str | os.PathLike[str]) -> IO[bytes]:
    """``path`` opened for appending bytes, created ``0600`` if missing (a log file)."""
    create_private_file(path)
    return open(path, "ab")
