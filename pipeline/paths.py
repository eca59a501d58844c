"""Where the stages read and write: the DVC outs (dvc.yaml names the same paths), the stage
that produces each, and the repository's root."""

from __future__ import annotations

from pathlib import Path

PREPARED_DIR = Path("data/prepared")
CLASSIFIER_PATH = Path("models/classifier.pt")
GENERATOR_PATH = Path("models/generator.pt")
CHECKPOINT_DIR = Path("models/checkpoints")
RUN_FILE = Path("models/mlflow_run.json")
ONNX_PATH = Path("models/generator.onnx")
METRICS_DIR = Path("metrics")
REPORTS_DIR = Path("reports")  # every figure of a stage; metrics/ keeps the headline ones
PLOTS_DIR = Path("plots")
SAMPLES_DIR = PLOTS_DIR / "samples"
HISTORY_CSV = PLOTS_DIR / "train_history.csv"
LECTURES_DIR = PLOTS_DIR / "lectures"  # the lectures' pictures of this run (docs/lectures.md)
EVAL_SAMPLES_PNG = PLOTS_DIR / "eval_samples.png"
HISTOGRAM_CSV = PLOTS_DIR / "class_histogram.csv"
FP16_ONNX_PATH = Path("models/generator_fp16.onnx")
# The run that `train` has open, kept beside the checkpoints (a persisted DVC out) so that the
# next start can close it when the process was killed before it could.
OPEN_RUN_FILE = CHECKPOINT_DIR / "open_mlflow_run.json"

# Which stage produces which out, for "run this stage first" messages.
PRODUCED_BY = {
    PREPARED_DIR: "prepare",
    CLASSIFIER_PATH: "classifier",
    GENERATOR_PATH: "train",
    RUN_FILE: "train",
    ONNX_PATH: "export",
}


# Every out of each stage, its main one first (a full disk is reported at the out being
# written; at the main one when no closer path is known).
STAGE_OUTS = {
    "prepare": (PREPARED_DIR, METRICS_DIR / "prepare.json"),
    "classifier": (CLASSIFIER_PATH, METRICS_DIR / "classifier.json",
                   REPORTS_DIR / "classifier.json"),
    "train": (GENERATOR_PATH, CHECKPOINT_DIR, SAMPLES_DIR, HISTORY_CSV, LECTURES_DIR, RUN_FILE,
              METRICS_DIR / "train.json", REPORTS_DIR / "train.json"),
    "evaluate": (METRICS_DIR / "eval.json", REPORTS_DIR / "eval.json", EVAL_SAMPLES_PNG,
                 HISTOGRAM_CSV),
    "export": (ONNX_PATH, FP16_ONNX_PATH, METRICS_DIR / "export.json",
               REPORTS_DIR / "export.json"),
}  # fmt: skip


def repo_root() -> Path:
    """The project's root, also from inside a temp workspace of `dvc exp run --queue`.

    Queued experiments run in a copy under `<repo>/.dvc/tmp/exps/`; their runs belong in the
    repository's own tracking database, not in a copy that is deleted afterwards.
    """
    cwd = Path.cwd().resolve()
    parts = cwd.parts
    for i in range(len(parts) - 3):
        if parts[i : i + 3] == (".dvc", "tmp", "exps"):
            return Path(*parts[:i])
    return cwd
