"""docs/results.md's recipe blocks say why each value was chosen: they must be the recipes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from ganforge.recipe import RECIPES

ROOT = Path(__file__).resolve().parents[2]


def yaml_block_after(heading: str, text: str) -> dict:
    """The first ```yaml block after `heading` in `text`, parsed (its `train:` section)."""
    rest = text[text.index(heading) :]
    body = rest[rest.index("```yaml") + len("```yaml") :]
    return yaml.safe_load(body[: body.index("```")])["train"]


@pytest.mark.parametrize(
    ("heading", "recipe", "extra"),
    [
        ("### The ring/grid configuration", "mlp_points_2d", {}),
        ("### Goodfellow et al. 2014 on digits", "mlp_images", {"model": "mlp"}),
    ],
)
def test_each_documented_block_is_its_recipe(heading: str, recipe: str, extra: dict) -> None:
    block = yaml_block_after(heading, (ROOT / "docs" / "results.md").read_text())
    assert block == {**RECIPES[recipe], **extra}
