"""Writing results safely: atomic writes, a folder checked for writing before hours of work, one
training per run folder, and the cache folder."""
from __future__ import annotations

import errno
import fcntl
import os
import tempfile
from pathlib import Path
from typing import IO

from heatnet.errors import ConfigError, HeatnetError


class SaveError(HeatnetError, OSError):
    """A file could not be written (disk full, permissions); the message says what was kept."""

    same_in_every_process = False



def cache_folder() -> Path:
    """Where heatnet keeps what it can remake (exported graphs, experiments' --help): $HEATNET_CACHE,
    else $XDG_CACHE_HOME/heatnet, else ~/.cache/heatnet."""
    if os.environ.get("HEATNET_CACHE"):
        return Path(os.environ["HEATNET_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "heatnet"

def write_atomic(path: Path, data: bytes | memoryview) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over `path`: a reader
    sees the old file or the new one, never half of one. On failure the temporary file is
    removed, the old file is left as it was, and SaveError names the file and the cause."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise SaveError(e.errno, f"could not write {path} ({e.strerror or e})") from None
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def check_writable(folder: Path, what: str = "output folder") -> None:
    """ConfigError unless `folder` exists as a writable folder or can be created (checked on its
    nearest existing parent), so a run fails at start-up, not when it first saves."""
    folder = Path(folder).absolute()
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{what} {folder}: {existing} is a file, not a folder")
    try:  # a real write: permission bits say nothing to root, or on read-only and special file systems
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ConfigError(f"{what} {folder}: cannot write in {existing} ({e.strerror or e})") from None


def lock_folder(folder: Path) -> IO:
    """An exclusive lock on folder/.lock, held while the returned file stays open (the kernel
    drops it when the process ends, even by SIGKILL). ConfigError when another process holds it."""
    handle = open(Path(folder) / ".lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        handle.close()
        if e.errno in (errno.EAGAIN, errno.EACCES):
            raise ConfigError(f"{folder}: another training is writing to this run folder; wait for it to end "
                              f"or choose another --run-dir") from None
        raise
    return handle
