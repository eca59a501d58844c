"""--model and --champion: the exported generator a command runs, local or from MLflow."""

from __future__ import annotations

from pathlib import Path

from ganforge.cli import repo
from ganforge.cli.common import fail, say
from ganforge.cli.options import DEFAULT_MODEL, ProviderChoice
from ganforge.inference import Generator, ModelFileError, ProviderError

MLFLOW_URIS = ("models:/", "runs:/")


def registered(model: Path, champion: bool) -> Path:
    """--model as a local .onnx path: an MLflow model URI (or --champion) is downloaded from
    this repository's tracking store; a plain path is returned as it is."""
    text = str(model).replace(":/" + "/", ":/")  # typer's Path keeps models:/..., not models://
    if champion:
        name = repo.mlflow_settings().registered_model
        if not name:
            fail("--champion: params.yaml sets no mlflow.registered_model, so there is none")
        text = f"models:/{name}@champion"
    if not text.startswith(MLFLOW_URIS):
        return model
    return _download(text)


def _download(text: str) -> Path:
    """The .onnx file of the MLflow model at URI `text`, fetched from the tracking store."""
    uri = repo.tracking_uri()
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=text))
    except MlflowException as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        fail(f"{text}: {first} (tracking store {uri}; run `./run.sh pipeline` first)")
    found = [local] if local.suffix == ".onnx" else sorted(local.rglob("*.onnx"))
    if not found:
        fail(f"{text}: the MLflow model holds no .onnx file")
    say("loading {} ({})", text, found[0])
    return found[0]


def resolve(model: Path, champion: bool = False) -> Path:
    """The local file to open; the default path, when missing, fails with how to make it."""
    model = registered(model, champion)
    if model == DEFAULT_MODEL and not model.exists() and not model.is_symlink():
        fail(f"{model}: no such model file (run `./run.sh pipeline` first: it writes it)")
    return model


def open_generator(path: Path, provider: ProviderChoice, threads: int | None = None) -> Generator:
    """`Generator.load`, its refusal (a bad file, an unusable provider) as one error line."""
    try:
        return Generator.load(path, provider=provider.value, threads=threads)
    except (ModelFileError, ProviderError) as err:
        fail(str(err))


def load(model: Path, provider: ProviderChoice, champion: bool = False) -> Generator:
    """The generator --model (or --champion) names, ready to sample."""
    return open_generator(resolve(model, champion), provider)
