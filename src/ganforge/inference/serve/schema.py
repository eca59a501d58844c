"""What a request may hold and what an error answer says: one line naming the field and the fix."""

from __future__ import annotations

from typing import Any, Literal

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ganforge.inference import prng


class GenerateRequest(BaseModel):
    """A request for samples; every field has a default."""

    model_config = ConfigDict(extra="forbid")

    num: int = Field(16, ge=1, description="Number of samples (at most the server's max_num).")
    seed: int = Field(0, ge=0, le=prng.MAX_SEED, description="Seed of the latents.")
    labels: int | list[int] | None = Field(
        None,
        description="Models with classes (conditional or latent-class): one class for all, "
        "or one per sample. Default: a conditional model cycles through its classes, a "
        "latent-class model draws them from the latents. A model without classes takes none.",
    )
    truncation: float = Field(
        1.0, gt=0.0, le=1.0, description="ψ in (0, 1]: latents scaled toward 0; 1 = none."
    )
    format: Literal["png", "json"] = Field(
        "png", description="png: one grid image; json: one base64 PNG per sample."
    )
    nrow: int | None = Field(None, ge=1, description="Images per grid row (png).")


class ErrorBody(BaseModel):
    """What every 4xx answer holds: one line naming the field and the fix."""

    error: str


def error(status: int, message: str) -> JSONResponse:
    """The answer `{"error": message}` with HTTP `status`."""
    return JSONResponse({"error": message}, status_code=status)


def one_line(err: RequestValidationError) -> str:
    """pydantic's error list as one line: 'num: Input should be ... (got -1)'."""
    first = err.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "body"
    got = first.get("input")
    shown = "" if isinstance(got, dict) or got is None else f" (got {_short(got)})"
    more = len(err.errors()) - 1
    tail = f"; and {more} more problem{'s' * (more > 1)}" if more else ""
    return f"{where}: {first.get('msg', 'invalid')}{shown}{tail}"


def _short(value: Any, width: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."
