"""`ganforge arithmetic`: class arithmetic a − b + c on averaged latents, as one PNG grid."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ganforge.cli.common import check_seed, check_truncation, fail, positive, say
from ganforge.cli.files import check_out_file, write_failed
from ganforge.cli.model import load
from ganforge.cli.options import (
    DEFAULT_MODEL,
    ChampionOpt,
    GridOutOpt,
    ModelOpt,
    ProviderChoice,
    ProviderOpt,
    SeedOpt,
    TruncationOpt,
)
from ganforge.inference import GeneratorInputError, ModelFileError, save_image
from ganforge.inference.arithmetic import MAX_PER_CLASS

PerClassOpt = Annotated[
    int,
    typer.Option(
        help=f"Samples per class whose latents are averaged (1..{MAX_PER_CLASS}); DCGAN averaged 3."
    ),
]


def arithmetic(
    a: Annotated[int, typer.Argument(help="Class a of A − B + C (`ganforge info` lists them).")],
    b: Annotated[int, typer.Argument(help="Class b, taken away.")],
    c: Annotated[int, typer.Argument(help="Class c, added: the result is drawn as class c.")],
    model: ModelOpt = DEFAULT_MODEL,
    champion: ChampionOpt = False,
    per_class: PerClassOpt = 3,
    seed: SeedOpt = 0,
    truncation: TruncationOpt = 1.0,
    out: GridOutOpt = Path("arithmetic.png"),
    provider: ProviderOpt = ProviderChoice.auto,
) -> None:
    """Class arithmetic A − B + C on averaged latents: rows a, b, c and the result in one PNG."""
    positive(per_class, "--per-class")
    if per_class > MAX_PER_CLASS:
        fail(f"--per-class = {per_class}: at most {MAX_PER_CLASS} (one grid row per class)")
    check_seed(seed)
    check_truncation(truncation)
    if out.suffix.lower() != ".png":
        fail(f"{out}: give --out a .png name")
    check_out_file(out)
    gen = load(model, provider, champion)
    try:
        table = gen.class_arithmetic(a, b, c, per_class, seed, truncation)
    except (GeneratorInputError, ModelFileError) as err:
        fail(str(err))
    try:
        save_image(table.grid(), out)
    except OSError as err:
        write_failed(out, err)
    say("wrote {} − {} + {} ({} per class, seed {}) to [bold]{}[/]", a, b, c, per_class, seed, out)
