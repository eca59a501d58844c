"""`ganforge`: use an exported generator (generate, interpolate, arithmetic, info, serve) from the
shell, and see this repository's runs (ui, runs).

One module per group of commands; this one builds the typer app and registers them. Only
`ganforge.inference` is imported at the top: the commands that serve an ONNX model start fast
and never load torch.
"""

from __future__ import annotations

import typer

from ganforge.cli.files import MAX_FOLDER, MAX_GRID, MAX_POINTS, STREAM_BATCH
from ganforge.cli.generate import generate, interpolate
from ganforge.cli.info import info
from ganforge.cli.latent import arithmetic
from ganforge.cli.serve import serve
from ganforge.cli.tracking import runs, ui

__all__ = ["MAX_FOLDER", "MAX_GRID", "MAX_POINTS", "STREAM_BATCH", "app"]


class _Command(typer.core.TyperCommand):
    """A command whose --help lists no value type for flags (`--help`, `--overwrite`)."""

    def get_help_option(self, ctx):  # type: ignore[no-untyped-def]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option

    def get_params(self, ctx):  # type: ignore[no-untyped-def]
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params


class _Group(typer.core.TyperGroup):
    def get_help_option(self, ctx):  # type: ignore[no-untyped-def]
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


app = typer.Typer(
    name="ganforge",
    cls=_Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="Sample, interpolate and inspect ganforge generators exported to ONNX.",
)

# In the order `ganforge --help` lists them.
for _command in (generate, interpolate, arithmetic, info, serve, ui, runs):
    app.command(cls=_Command)(_command)
