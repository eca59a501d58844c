"""Atomic file output: a crash or a kill never leaves a half-written file behind."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    The temp file lives in the same directory so that `os.replace` is atomic; on error it is
    removed and `path` keeps its previous content. A symlink at `path` is replaced by the new
    file, never written through (rename does not follow it), so a link planted in an output
    folder cannot redirect a write; the temp name is created exclusively (`mkstemp`).
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        if tmp.is_file():
            # mkstemp makes 0600 files; outs are meant to be read like any other file.
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write `data` as pretty JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """`torch.save` to `path`, atomically."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
