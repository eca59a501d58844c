"""Checkpoints that unpickle to the wrong thing: one line naming the file and what was expected.

`models/generator.pt` raises `CheckpointError` (the stages print it in one line); a resumable
`models/checkpoints/last.pt` that is damaged is set aside, the run starts fresh with one
warning, and the next rerun does not fail on it again (issue #20).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_training import tiny_config as tiny

from ganforge.models import (
    GeneratorSpec,
    build_discriminator,
    build_generator,
    load_discriminator,
    load_generator,
    save_generator,
)
from ganforge.models.checkpoint import CheckpointError
from ganforge.training import LAST_CHECKPOINT, fit

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=4, ndf=4)


def _generator_file() -> dict[str, Any]:
    torch.manual_seed(0)
    blob = {
        "spec": SPEC.model_dump(mode="json"),
        "generator": build_generator(SPEC).state_dict(),
        "generator_ema": None,
        "discriminator": build_discriminator(SPEC).state_dict(),
        "extra": {"run_id": "r"},
    }
    return blob


def _with(key: str, value: Any) -> Callable[[dict], Any]:
    return lambda blob: {**blob, key: value}


def _without(key: str) -> Callable[[dict], Any]:
    return lambda blob: {k: v for k, v in blob.items() if k != key}


def _weight(key: str, value: Any) -> Callable[[dict], Any]:
    """The first tensor of the state dict at `key` replaced by `value`."""

    def change(blob: dict) -> dict:
        out = copy.deepcopy(blob)
        first = next(iter(out[key]))
        out[key][first] = value
        return out

    return change


OTHER = GeneratorSpec(arch="dcgan", nz=8, sample_shape=(1, 16, 16), ngf=6, ndf=6)

# case -> (what becomes of the file's content, words the one-line message must hold)
GENERATOR_CASES: dict[str, tuple[Callable[[dict], Any], list[str]]] = {
    "a list": (lambda blob: [1, 2], ["a list", "expected a dict with 'spec', 'generator'"]),
    "a string": (lambda blob: "weights", ["the string 'weights'"]),
    "an int": (lambda blob: 3, ["an int"]),
    "None": (lambda blob: None, ["None; expected a dict"]),
    "no spec": (_without("spec"), ["a dict without 'spec'", "the model's spec"]),
    "no generator": (_without("generator"), ["a dict without 'generator'"]),
    "spec a list": (_with("spec", [1]), ["'spec' is a list", "expected the model's spec"]),
    "generator a list": (_with("generator", [1]), ["'generator' is a list"]),
    "ema a string": (_with("generator_ema", "x"), ["'generator_ema' is the string 'x'"]),
    "extra a list": (_with("extra", []), ["'extra' is a list"]),
    "spec unbuildable": (
        _with("spec", {"arch": "dcgan", "nz": 8, "sample_shape": [1, 20, 20]}),
        ["holds a spec ganforge cannot build", "power-of-two"],
    ),
    "another model's weights": (
        _with("generator", build_generator(OTHER).state_dict()),
        ["'generator' does not fit the model of its spec", "has shape"],
    ),
    "a weight that is a string": (
        _weight("generator", "w"),
        ["'generator' does not fit", "is the string 'w', not a tensor"],
    ),
    "weights of another architecture": (
        _with("generator", {"fc.weight": torch.zeros(2)}),
        ["weights of another model", "missing", "unexpected (first 'fc.weight')"],
    ),
}


def _save(path: Path, content: Any) -> None:
    torch.save(content, path)


@pytest.mark.parametrize("case", list(GENERATOR_CASES))
def test_a_generator_file_of_the_wrong_shape_is_one_line(tmp_path: Path, case: str) -> None:
    change, words = GENERATOR_CASES[case]
    path = tmp_path / "generator.pt"
    _save(path, change(_generator_file()))
    with pytest.raises(CheckpointError) as info:
        load_generator(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path)), message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert isinstance(info.value, ValueError)  # the stages turn ValueErrors into one line


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"", ["not a readable ganforge generator"]),
        (b"garbage\n", ["not a readable ganforge generator"]),
        (pickle.dumps(print, protocol=2), ["not a readable ganforge generator", "Unpickling"]),
    ],
)
def test_a_generator_file_that_does_not_unpickle_is_one_line(
    tmp_path: Path, content: bytes, words: list[str]
) -> None:
    path = tmp_path / "generator.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_generator(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    for word in words:
        assert word in str(info.value)


def test_a_truncated_generator_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    save_generator(path, SPEC, build_generator(SPEC))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable ganforge generator") as info:
        load_generator(path)
    assert "\n" not in str(info.value)


def test_a_discriminator_of_the_wrong_shape_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "generator.pt"
    _save(path, _with("discriminator", build_discriminator(OTHER).state_dict())(_generator_file()))
    load_generator(path)  # G itself is fine
    with pytest.raises(CheckpointError, match="'discriminator' does not fit") as info:
        load_discriminator(path)
    assert "\n" not in str(info.value)
    _save(path, _with("discriminator", None)(_generator_file()))
    assert load_discriminator(path) is None


# ------------------------------------------------------- a damaged resumable checkpoint
@pytest.fixture(scope="module")
def resumable(images, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A checkpoint of tiny() at step 4 of 6: as it is, a rerun resumes from it."""
    folder = tmp_path_factory.mktemp("resumable")
    x, y = images
    with _one_thread():  # as the tests run (module fixtures are made before `one_thread`)
        fit(tiny(), x, y, checkpoint_dir=folder, stop_after=4)
    return torch.load(folder / LAST_CHECKPOINT, weights_only=True)


@pytest.fixture(scope="module")
def fresh(images) -> dict[str, torch.Tensor]:
    """G's weights after an uninterrupted run from scratch (no checkpoint)."""
    x, y = images
    with _one_thread():  # the tests' thread count: another one sums in another order
        return fit(tiny(), x, y).generator.state_dict()


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _opt_state(key: str, value: Any) -> Callable[[dict], Any]:
    def change(state: dict) -> dict:
        out = copy.deepcopy(state)
        out[key]["state"][0]["exp_avg"] = value
        return out

    return change


def _rng(value: Any) -> Callable[[dict], Any]:
    return lambda state: {**state, "rng": [value]}


# case -> (what becomes of last.pt's content, words the warning must hold)
STATE_CASES: dict[str, tuple[Callable[[dict], Any], list[str]]] = {
    "a list": (lambda s: [1, 2], ["a list; expected a dict with 'format', 'spec'"]),
    "a string": (lambda s: "checkpoint", ["the string 'checkpoint'"]),
    "None": (lambda s: None, ["None"]),
    "an empty dict": (lambda s: {}, ["a dict without 'format'"]),
    "another format": (_with("format", "other-v9"), ["format 'other-v9'", "ganforge-train-v1"]),
    "a generator file": (lambda s: _generator_file(), ["a dict without 'format'"]),
    "step a string": (_with("step", "six"), ["'step' is the string 'six'", "an int"]),
    "step a bool": (_with("step", True), ["'step' is a bool"]),
    "spec a list": (_with("spec", [1]), ["'spec' is a list"]),
    "config a list": (_with("config", [1]), ["'config' is a list"]),
    "history a dict": (_with("history", {}), ["'history' is a dict"]),
    "history of ints": (_with("history", [1, 2]), ["'history' holds an int"]),
    "history rows without step": (_with("history", [{"loss_d": 1.0}]), ["no int 'step'"]),
    "callbacks a list": (_with("callbacks", []), ["'callbacks' is a list"]),
    "a callback state a list": (_with("callbacks", {"sample_grid": [1]}), ["'sample_grid'"]),
    "negative step": (_with("step", -3), ["negative"]),
    "weights of another shape": (
        _weight("generator", torch.zeros(3)),
        ["'generator'", "has shape [3]"],
    ),
    "EMA weights missing a tensor": (
        lambda s: {**s, "generator_ema": dict(list(s["generator_ema"].items())[1:])},
        ["'generator_ema'", "1 missing"],
    ),
    "optimizer groups": (
        _with("opt_g", {"state": {}, "param_groups": []}),
        ["'opt_g'", "0 parameter group(s)"],
    ),
    "optimizer state of another shape": (
        _opt_state("opt_d", torch.zeros(2, 2)),
        ["'opt_d'", "'exp_avg' of parameter 0 has shape [2, 2]"],
    ),
    "optimizer state a string": (_opt_state("opt_g", "x"), ["'opt_g'", "the string 'x'"]),
    "an rng a string": (_with("rng", ["x"]), ["'rng' holds the string 'x'"]),
    "an rng state torch refuses": (
        _rng({"torch": torch.zeros(3), "numpy": {}, "python": []}),
        ["RNG state cannot be restored"],
    ),
    "an rng state without numpy": (
        lambda s: {**s, "rng": [{k: v for k, v in s["rng"][0].items() if k != "numpy"}]},
        ["RNG state cannot be restored", "KeyError"],
    ),
}


def _assert_fresh(result, fresh: dict[str, torch.Tensor]) -> None:
    """Nothing of the damaged file got into the run: it equals one started from scratch."""
    assert result.resumed_from is None and result.step == 6
    state = result.generator.state_dict()
    assert all(torch.equal(state[k], fresh[k]) for k in fresh)


@pytest.mark.parametrize("case", list(STATE_CASES))
def test_a_damaged_checkpoint_is_set_aside_and_the_run_starts_fresh(
    images, resumable, fresh, tmp_path: Path, caplog: pytest.LogCaptureFixture, case: str
) -> None:
    change, words = STATE_CASES[case]
    x, y = images
    path = tmp_path / LAST_CHECKPOINT
    _save(path, change(resumable))
    damaged = path.read_bytes()
    kept = tmp_path / "replaced-unreadable.pt"

    with caplog.at_level(logging.WARNING, logger="ganforge"):
        interrupted = fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    assert interrupted.resumed_from is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "\n" not in warnings[0], warnings
    message = warnings[0]
    assert message.startswith(f"{path} is not a usable ganforge training checkpoint (")
    assert f"starting fresh. The file is kept as {kept}" in message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert kept.read_bytes() == damaged  # kept while the new run is not finished

    # The rerun does not trip on it again: it resumes the new run and, finished, drops it.
    resumed = fit(tiny(), x, y, checkpoint_dir=tmp_path)
    assert resumed.resumed_from == 2 and resumed.step == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT]


@pytest.mark.parametrize(
    "case", ["a list", "weights of another shape", "an rng state torch refuses"]
)
def test_a_run_over_a_damaged_checkpoint_equals_a_run_from_scratch(
    images, resumable, fresh, tmp_path: Path, case: str
) -> None:
    """Checked before anything is loaded: no weight, optimizer or RNG state leaks in."""
    x, y = images
    _save(tmp_path / LAST_CHECKPOINT, STATE_CASES[case][0](resumable))
    _assert_fresh(fit(tiny(), x, y, checkpoint_dir=tmp_path), fresh)


@pytest.mark.parametrize(
    "content", [b"", b"garbage\n", pickle.dumps(print, protocol=2)], ids=["empty", "text", "code"]
)
def test_a_checkpoint_that_does_not_unpickle_is_set_aside(
    images, tmp_path: Path, caplog: pytest.LogCaptureFixture, content: bytes
) -> None:
    x, y = images
    (tmp_path / LAST_CHECKPOINT).write_bytes(content)
    with caplog.at_level(logging.WARNING, logger="ganforge"):
        fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    assert "is not a usable ganforge training checkpoint" in caplog.text
    assert (tmp_path / "replaced-unreadable.pt").read_bytes() == content


def test_a_truncated_checkpoint_is_set_aside(images, resumable, tmp_path: Path) -> None:
    x, y = images
    path = tmp_path / LAST_CHECKPOINT
    _save(path, resumable)
    path.write_bytes(path.read_bytes()[:5000])
    fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    assert (tmp_path / "replaced-unreadable.pt").stat().st_size == 5000


def test_two_damaged_checkpoints_are_both_kept(images, tmp_path: Path) -> None:
    x, y = images
    (tmp_path / LAST_CHECKPOINT).write_bytes(b"first")
    fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    (tmp_path / LAST_CHECKPOINT).write_bytes(b"second")
    fit(tiny(), x, y, checkpoint_dir=tmp_path, stop_after=2)
    assert (tmp_path / "replaced-unreadable.pt").read_bytes() == b"first"
    assert (tmp_path / "replaced-unreadable-2.pt").read_bytes() == b"second"


def test_an_unreadable_checkpoint_file_stops_with_one_line(
    images, resumable, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the content but the file (permissions, a disk error): starting fresh is no fix."""
    x, y = images
    _save(tmp_path / LAST_CHECKPOINT, resumable)

    real_open = Path.open

    def denied(self: Path, *args, **kwargs):  # what chmod 000 does (not to root, who tests)
        if self.name == LAST_CHECKPOINT:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(CheckpointError) as info:
        fit(tiny(), x, y, checkpoint_dir=tmp_path)
    message = str(info.value)
    assert message == (
        f"cannot read {tmp_path / LAST_CHECKPOINT} (Permission denied): make it readable, or "
        "move it away to start training afresh"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [LAST_CHECKPOINT]
