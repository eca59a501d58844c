"""Stage `prepare`: decode the configured data set once into data/prepared (see dvc.yaml)."""

from __future__ import annotations

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)

from ganforge.data import DataError, prepare_dataset
from ganforge.io import write_json
from pipeline.params import load_params
from pipeline.paths import METRICS_DIR, PREPARED_DIR
from pipeline.stage import StageError, setup_logging, stage_main


@stage_main("prepare")
def main() -> None:
    setup_logging()
    params = load_params()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=total)
            bar.update(tasks[phase], completed=done, total=total)

        try:
            meta = prepare_dataset(params.prepare, params.seed, PREPARED_DIR, progress=progress)
        except DataError as err:
            raise StageError(f"prepare: {err}") from None
    metrics = {
        **{f"{split}_size": n for split, n in meta["splits"].items()},
        "skipped": meta["skipped"]["count"],
        "num_classes": meta["num_classes"],
    }
    write_json(METRICS_DIR / "prepare.json", metrics)


if __name__ == "__main__":
    main()
