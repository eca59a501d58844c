"""What every stage does around its work: the entry (one line, never a traceback, for a bad
input, a full disk or a SIGTERM), logging, upstream checks, staged outs and metrics files."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from rich.logging import RichHandler

from ganforge.io import write_json
from pipeline.full_disk import no_space_line
from pipeline.paths import GENERATOR_PATH, METRICS_DIR, PRODUCED_BY, REPORTS_DIR, STAGE_OUTS


class StageError(SystemExit):
    """A stage cannot go on: exit with this message rather than a traceback."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (`kill`, a CI timeout) as an exception, so that the way out closes the MLflow
    run as KILLED and removes staged and temp files, as Ctrl-C does."""


def _raise_on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block SIGTERM raises `Terminated` (in the main thread; elsewhere no-op)."""
    previous = None
    with contextlib.suppress(ValueError):  # not the main thread: no handler
        previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def stage_main(stage: str) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Wrap the `main` of `stage` as its entry point.

    A full disk (ENOSPC or EDQUOT anywhere, torch.save's failed write included) ends it with
    one line naming the path; SIGTERM ends it with one line and exit code 143 once the MLflow
    run is closed KILLED and staged files are gone.
    """

    def wrap(main: Callable[[], None]) -> Callable[[], None]:
        @functools.wraps(main)
        def entry() -> None:
            try:
                with sigterm_raises():
                    main()
            except Terminated:
                print(f"{stage}: stopped by SIGTERM", file=sys.stderr)
                raise SystemExit(128 + signal.SIGTERM) from None
            except (OSError, RuntimeError) as err:
                line = no_space_line(stage, err, STAGE_OUTS.get(stage, ()))
                if line is None:
                    raise
                raise StageError(line) from None

        return entry

    return wrap


def setup_logging(level: int = logging.INFO) -> logging.Logger:
    """Rich console logging for a stage; the library logs through `logging` too."""
    logging.basicConfig(
        level=level,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
        force=True,
    )
    for noisy in ("alembic", "mlflow.store", "urllib3", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    return logging.getLogger("ganforge")


def require_upstream(*paths: Path) -> None:
    """Stop with a message naming the stage to run when an upstream out is missing."""
    for path in paths:
        if not path.exists():
            stage = PRODUCED_BY.get(path) or next(
                (s for p, s in PRODUCED_BY.items() if p in path.parents), None
            )
            hint = f"run `dvc repro {stage}` first" if stage else "run `dvc repro` first"
            raise StageError(f"{path} is missing: {hint}.")


def write_metrics(
    stage: str,
    figures: dict[str, Any],
    headline: Sequence[str],
    staged: dict[Path, Path] | None = None,
) -> dict[str, Any]:
    """Write reports/<stage>.json (every figure) and metrics/<stage>.json (the headline ones).

    DVC diffs every number of a metrics file in `dvc exp show` / `dvc metrics diff`; only the
    figures that compare across runs belong there. Timings, latencies, sample counts and
    per-batch rows stay in the report, a plain out. With `staged` (from `staged_outputs`),
    each file goes to its staged path. Returns the headline subset.
    """
    report, metrics = REPORTS_DIR / f"{stage}.json", METRICS_DIR / f"{stage}.json"
    staged = staged or {}
    write_json(staged.get(report, report), figures)
    top = {k: figures[k] for k in headline if figures.get(k) is not None}
    write_json(staged.get(metrics, metrics), top)
    return top


@contextlib.contextmanager
def staged_outputs(*paths: Path) -> Iterator[dict[Path, Path]]:
    """Temp paths with the same file names as `paths`, moved into place only on success.

    A stage writes (and logs to MLflow) the staged files; when anything in the block fails,
    the outs keep their previous content. Each staged file sits in a hidden folder beside
    its target, so the final rename is atomic and MLflow artifacts keep the real names.
    Folders left behind by a killed stage are removed first.
    """
    dirs: list[Path] = []
    staged: dict[Path, Path] = {}
    try:
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            for stale in path.parent.glob(f".{path.name}.*.staged"):
                shutil.rmtree(stale, ignore_errors=True)
            folder = Path(
                tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".staged", dir=path.parent)
            )
            dirs.append(folder)
            staged[path] = folder / path.name
        yield staged
        _move_into_place(staged)
    finally:
        for folder in dirs:
            shutil.rmtree(folder, ignore_errors=True)


def _move_into_place(staged: dict[Path, Path]) -> None:
    # A SIGTERM between two renames would leave the outs of two runs side by side: it waits
    # until all are in place (and then stops the stage as usual).
    blocked = {signal.SIGTERM}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    try:
        for path, tmp in staged.items():
            if tmp.exists():
                os.replace(tmp, path)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def read_generator(path: Path = GENERATOR_PATH, **kwargs: Any) -> Any:
    """`load_generator` for a stage: an unreadable file is one line naming it and the fix."""
    from ganforge.models import load_generator

    return _read_trained(load_generator, "generator", path, **kwargs)


def read_discriminator(path: Path = GENERATOR_PATH, device: Any = "cpu") -> Any:
    """`load_discriminator` (D saved beside G) for a stage, failing as `read_generator` does."""
    from ganforge.models import load_discriminator

    return _read_trained(load_discriminator, "discriminator", path, device)


def _read_trained(loader: Any, what: str, path: Path, *args: Any, **kwargs: Any) -> Any:
    require_upstream(path)
    try:
        return loader(path, *args, **kwargs)
    except Exception as err:  # torch.load/unpickling/state-dict errors all mean one thing
        said = " ".join(str(err).split()[:12])[:100]
        raise StageError(
            f"{path} cannot be read as a ganforge {what} ({type(err).__name__}: {said}): "
            f"restore it with `dvc checkout {path}` or retrain with `dvc repro train`."
        ) from None
