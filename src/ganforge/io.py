"""Atomic file output: a crash or a kill never leaves a half-written file behind.

Files are written to a temp file and renamed (`atomic_path`); what a long run builds up (a
training's history, its sample grids) is staged in a hidden folder beside its out and swapped
in when the run succeeds (`staging_folder`, `swap_in`). A full disk (or quota) during a write
ends in one error that names the file: `OSError(errno.ENOSPC, "No space left on device",
<path>)`, whatever layer hit it first.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import json
import math
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

# A quota met is a full disk to whoever writes: both say "free some space".
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(err: BaseException) -> bool:
    """True when `err` is a full disk or quota, or was raised because of one.

    torch's zip writer reports the failed `write` of a Python file as a RuntimeError
    ("unexpected pos", "PytorchStreamWriter failed ...") raised while handling the OSError,
    so the chain of causes is searched too.
    """
    seen: set[int] = set()
    pending: list[BaseException | None] = [err]
    while pending:
        cur = pending.pop()
        if cur is None or id(cur) in seen:
            continue
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.errno in _DISK_FULL:
            return True
        pending += [cur.__cause__, cur.__context__]
    return False


def disk_full_error(path: str | os.PathLike[str]) -> OSError:
    """The one error a full disk ends in: ENOSPC naming `path` (the file that was written)."""
    return OSError(errno.ENOSPC, "No space left on device", os.fspath(path))


@contextlib.contextmanager
def disk_full_names(path: str | os.PathLike[str]) -> Iterator[None]:
    """Inside the block, a full disk is re-raised as `disk_full_error(path)`.

    For writers that stage a file under another name: the error names the out, not its
    hidden staging path.
    """
    try:
        yield
    except Exception as err:
        if is_disk_full(err):
            raise disk_full_error(path) from err
        raise


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it replaces `path` in one rename.

    The temp file lives in the same directory so that `os.replace` is atomic; on error it is
    removed and `path` keeps its previous content (a full disk is raised as
    `disk_full_error(path)`). A symlink at `path` is replaced by the new file, never written
    through (rename does not follow it), so a link planted in an output folder cannot
    redirect a write; the temp name is created exclusively (`mkstemp`).
    """
    target = Path(path)
    with disk_full_names(target):
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


def write_csv(
    path: str | os.PathLike[str], columns: Sequence[str], rows: Iterable[Mapping[str, Any]]
) -> None:
    """`rows` under the header `columns`, atomically: a cell a row lacks is empty, floats have 6
    significant digits and NaN is empty (DVC's plots then draw no point there)."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(columns), extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in columns})


def _csv_cell(value: Any) -> Any:
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return value


def torch_save(obj: Any, path: str | os.PathLike[str]) -> None:
    """`torch.save` to `path`, atomically."""
    import torch

    # Through a Python file, not a path: torch's own writer reports a full disk only as
    # "unexpected pos"; Python's write raises the OSError that `is_disk_full` recognises.
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        torch.save(obj, fh)


STAGED_SUFFIX = ".staged"
_SWAPPED_SUFFIX = ".old"


def staging_folder(out: str | os.PathLike[str]) -> Path:
    """A new hidden folder beside `out` (`.<name>.<random>.staged`): same file system, so that
    `swap_in` is a rename."""
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    with disk_full_names(target):
        folder = Path(
            tempfile.mkdtemp(prefix=f".{target.name}.", suffix=STAGED_SUFFIX, dir=target.parent)
        )
    # mkdtemp makes it private (0700); once swapped in it is the out, readable as its parent
    # folder is (a plots page or a web server run by another user reads it)
    folder.chmod(stat.S_IMODE(target.parent.stat().st_mode))
    return folder


def is_staging_of(out: str | os.PathLike[str], name: str) -> bool:
    """Whether `name` is a staging folder name `staging_folder(out)` could have made (a name
    read back from a file is only used after this check: no path of its own choosing)."""
    pattern = rf"\.{re.escape(Path(out).name)}\.[A-Za-z0-9_]+{re.escape(STAGED_SUFFIX)}"
    return re.fullmatch(pattern, name) is not None


def remove_stale_staging(out: str | os.PathLike[str], keep: Path | None = None) -> list[Path]:
    """Remove the staging folders of `out` that a killed or failed run left, except `keep`.

    Also finishes a `swap_in` that a kill cut between its two renames: the previous out is
    put back when the new one is not in place, else removed.
    """
    target = Path(out)
    removed = []
    for old in target.parent.glob(f".{target.name}.*{_SWAPPED_SUFFIX}"):
        if not target.exists() or (target.is_dir() and not any(target.iterdir())):
            _remove(target)
            os.replace(old, target)
        else:
            _remove(old)
    for stale in target.parent.glob(f".{target.name}.*{STAGED_SUFFIX}"):
        if keep is None or stale != keep:
            _remove(stale)
            removed.append(stale)
    return removed


def swap_in(staging: Path, out: str | os.PathLike[str], own: str = "*") -> None:
    """Put the staged folder `staging` in place of the folder `out`, by renames only (no space
    needed, so a full disk cannot stop it halfway).

    `own` is a glob of the names the staged folder stands for; the old folder's other entries
    (files someone else put there) are moved into the new one first. A kill between the two
    renames is repaired by the next `remove_stale_staging(out)`.
    """
    target = Path(out)
    if target.is_dir() and not target.is_symlink():
        for entry in target.iterdir():
            if not entry.match(own) and not (staging / entry.name).exists():
                os.replace(entry, staging / entry.name)
    if target.exists() or target.is_symlink():
        old = staging.with_name(staging.name.removesuffix(STAGED_SUFFIX) + _SWAPPED_SUFFIX)
        os.replace(target, old)
        os.replace(staging, target)
        _remove(old)
    else:
        os.replace(staging, target)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
