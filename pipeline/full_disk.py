"""A full disk, in any stage, as one line: `<stage>: no space left on device at <PATH>: ...`.

The error of a full disk rarely names its file: a write or a flush that fails says only
"[Errno 28] No space left on device", and torch.save, which writes through its own C++ zip
writer, says neither errno nor file. The path shown is the error's file name when it has one,
else the out that the innermost frame of the traceback was writing; either way a staged or
temp name (`.<out>.<random>.staged`, `.<out>.<random>.tmp`, `.<out>.tmp-<random>`) is named
back to the out it stands for.
"""

from __future__ import annotations

import errno
import os
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path

NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT})
# torch.save's zip writer on a full disk: its position check or its write fails, in a
# RuntimeError that names inline_container.cc.
TORCH_WRITER = "inline_container.cc"
TORCH_WRITE_FAILED = ("unexpected pos", "file write failed")
# Locals longer than this (file contents, say) are not taken for paths.
MAX_PATH_CHARS = 4096


def no_space_line(stage: str, err: BaseException, outs: Sequence[Path]) -> str | None:
    """The one line for `err` when it (or an error it was raised from) means a full disk, else
    None. `outs` are the stage's outs, the first one named when nothing closer is known."""
    found = _no_space_error(err)
    if found is None:
        return None
    filename = getattr(found, "filename", None)
    path: Path | None
    if isinstance(filename, str | bytes | os.PathLike):
        path = named_back(Path(os.fsdecode(filename)), outs)
    else:
        path = _written_out(found, err, outs)
    return no_space(stage, _shown(path if path is not None else outs[0] if outs else Path.cwd()))


def no_space(stage: str, path: str | os.PathLike[str]) -> str:
    """`<stage>: no space left on device at <path>: free space and rerun`."""
    return f"{stage}: no space left on device at {os.fspath(path)}: free space and rerun"


def is_no_space(err: BaseException) -> bool:
    """Whether `err` itself says the disk (or the user's quota) is full."""
    if isinstance(err, OSError):
        return err.errno in NO_SPACE
    if isinstance(err, RuntimeError):
        text = str(err)
        return TORCH_WRITER in text and any(s in text for s in TORCH_WRITE_FAILED)
    return False


def named_back(path: Path, outs: Sequence[Path]) -> Path:
    """`path` with each staged or temp alias of an out replaced by the out's own name."""
    names = {out.name for out in outs}
    parts: list[str] = []
    alias_of: str | None = None  # the out whose staged folder the previous part was
    for part in path.parts:
        out = next((n for n in names if part.startswith(f".{n}.")), None)
        name = out or part
        if name != alias_of:  # in `.x.<r>.staged/x` (or `/.x.<r>.tmp`) the file is x itself
            parts.append(name)
        alias_of = name if out else None
    return Path(*parts) if parts else path


def _no_space_error(err: BaseException) -> BaseException | None:
    """`err` or the first error in its chain (cause, context) that means a full disk."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        if is_no_space(current):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def _written_out(found: BaseException, err: BaseException, outs: Sequence[Path]) -> Path | None:
    """The path of an out (or a file in one) held by the innermost frame that holds one."""
    for value in _frame_values(found, err):
        if isinstance(value, os.PathLike) or (
            isinstance(value, str) and 0 < len(value) < MAX_PATH_CHARS and "\n" not in value
        ):
            try:
                path = named_back(Path(os.fsdecode(value)), outs)
            except (TypeError, ValueError):
                continue
            if any(_inside(path, out) for out in outs):
                return path
    return None


def _frame_values(*errors: BaseException) -> Iterator[object]:
    """The local values of every frame of the errors' tracebacks, innermost frame first."""
    for error in errors:
        frames = [frame for frame, _ in traceback.walk_tb(error.__traceback__)]
        for frame in reversed(frames):
            yield from list(frame.f_locals.values())


def _inside(path: Path, out: Path) -> bool:
    # abspath, not resolve: an out may be a symlink (a shared data/prepared), named as such
    full, target = Path(os.path.abspath(path)), Path(os.path.abspath(out))
    return full == target or target in full.parents


def _shown(path: Path) -> Path:
    """`path` relative to the workspace when it lies in it (as dvc.yaml names outs)."""
    full, cwd = Path(os.path.abspath(path)), Path.cwd()
    return full.relative_to(cwd) if cwd in full.parents else full
