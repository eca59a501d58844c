"""Typed, validated options for every part of the library.

Each class here is the one home of a section of a pipeline's configuration: its keys,
their defaults (from the papers where there is one) and their checks. The library itself
never reads a file: `pipeline/params.py` loads params.yaml into these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)


def plain_errors(err: ValidationError) -> str:
    """A pydantic error as one plain sentence per problem, `;`-joined (not pydantic's layout)."""
    return "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in err.errors())


class Options(BaseModel):
    """Base for option sections: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


Device = Literal["auto", "cpu", "cuda"] | str
# The exact graph rewrites of ganforge.export.rewrite, by name.
Rewrite = Literal["none", "projection", "subpixel"]


# How a conditional discriminator reads the label: a projection term on its logit
# (Miyato & Koyama 2018) or one-hot labels joined to its input (Mirza & Osindero 2014).
Conditioning = Literal["projection", "concat"]
# How a dcgan discriminator normalises its hidden layers.
DNorm = Literal["batch", "spectral", "none"]
# How a dcgan generator doubles its size: stride-2 transposed convs (Radford et al.) or
# bilinear resize + 3×3 conv (Odena et al. 2016).
GUpsample = Literal["transpose", "resize"]


class ArchOptions(BaseModel):
    """The options that shape G and D: the one home of their names, defaults and checks.

    Defaults are the papers' (Radford et al. 2015 for dcgan; the mlp's hidden widths share
    ngf / ndf). `ganforge.config.TrainConfig` (params.yaml's `train:` section) and
    `GeneratorSpec` (what a checkpoint records) both inherit these fields, so a new option or
    mode is declared once.
    """

    model_config = ConfigDict(extra="forbid")

    nz: int = Field(100, ge=1)
    # dcgan: base widths of G / D; mlp: widths of the hidden layers of G / D.
    ngf: int = Field(64, ge=1)
    ndf: int = Field(64, ge=1)
    # mlp G and D: hidden layers each (2: Goodfellow et al.'s nets; the PacGAN / VEEGAN toy
    # nets use 3-4). Ignored by dcgan.
    mlp_layers: int = Field(2, ge=1)
    # mlp D (Goodfellow et al. 2014): maxout pieces per unit (0: LeakyReLU units), dropout on
    # its hidden units and on its input (the paper's MNIST net used 0.2). Ignored by dcgan.
    maxout_pieces: int = Field(5, ge=0)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    input_dropout: float = Field(0.0, ge=0.0, lt=1.0)
    # How a conditional D reads the label (ignored when unconditional).
    d_conditioning: Conditioning = "projection"
    # dcgan D only: normalisation (batch: Radford et al.; spectral: Miyato et al. 2018; none),
    # minibatch-stddev group size (Karras et al. 2018; 0: off).
    d_norm: DNorm = "batch"
    mbstd_group: int = Field(0, ge=0)
    # PacGAN (Lin et al. 2018): D judges `pack` samples at once, stacked along channels (dcgan)
    # or joined end to end (mlp). 1: off.
    pack: int = Field(1, ge=1)
    # dcgan G only: how each stage doubles the size (see GUpsample).
    g_upsample: GUpsample = "transpose"

    @field_validator("mbstd_group")
    @classmethod
    def _group_has_a_spread(cls, value: int) -> int:
        if value == 1:
            raise ValueError("mbstd_group = 1 has no spread to measure: use 2 or more, or 0")
        return value

    @field_validator("maxout_pieces")
    @classmethod
    def _maxout_is_not_linear(cls, value: int) -> int:
        if value == 1:
            raise ValueError(
                "maxout_pieces = 1 makes linear units: use 2 or more, or 0 (LeakyReLU)"
            )
        return value


class PrepareConfig(Options):
    """How `prepare` turns a data source into the prepared tensor store."""

    dataset: Literal[
        "digits",
        "mnist",
        "fashion_mnist",
        "cifar10",
        "celeba",
        "image_folder",
        "gaussian_1d",
        "ring_2d",
        "grid_2d",
    ] = "digits"
    root: str = "data/raw"
    download: bool = False
    image_size: int = Field(32, ge=8, le=1024)
    # 1 (grey) or 3 (RGB) converts every image; auto keeps the data set's own (an image folder
    # is RGB when its files are in colour).
    channels: Literal["auto", 1, 3] = "auto"
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    strict: bool = False
    workers: int = Field(2, ge=1, le=256)
    chunk_size: int = Field(4096, ge=16)
    # toy distributions
    num_points: int = Field(20000, ge=100)
    gaussian_mean: float = 4.0
    gaussian_std: float = Field(0.5, gt=0.0)

    @model_validator(mode="after")
    def _fractions_leave_a_train_split(self) -> PrepareConfig:
        if self.val_fraction + self.test_fraction >= 0.9:
            raise ValueError(
                f"val_fraction + test_fraction = {self.val_fraction + self.test_fraction:g} "
                "leaves too little for training; keep their sum below 0.9"
            )
        return self


class ClassifierConfig(Options):
    """The domain classifier trained on real data: the offline feature net for FID/KID/IS."""

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(128, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = Field(1e-4, ge=0.0)
    width: int = Field(32, ge=4)
    feature_dim: int = Field(128, ge=8)
    device: Device = "auto"


# How a GAN uses the data's class labels: none (unconditional, as Radford et al.), conditional
# (a cGAN: G and D are told the label, Mirza & Osindero 2014), latent (D is told the label, G
# draws its class from z at the data's class shares, so it stays z-in / image-out). "auto" is
# resolved with the rest of the recipe (`ganforge.recipe`).
Labels = Literal["auto", "none", "conditional", "latent"]


class TrainConfig(Options, ArchOptions):
    """The GAN, its objective and the training loop.

    The defaults are the papers' (Radford et al.'s DCGAN: Adam 2e-4, beta1 0.5, batch 128, no
    regulariser; the architecture's in `ArchOptions`). The recipes measured on real runs live
    in `ganforge.recipe`, which params.yaml's `auto` values ask for; explicit values win.
    """

    # auto: dcgan for images, mlp for points (toy data), resolved when the spec is built and
    # saved resolved with the generator; dcgan / mlp force one.
    model: Literal["auto", "dcgan", "mlp"] = "auto"
    labels: Labels = "none"
    # With labels: none, D reads each training sample's k-means cluster instead of a label and
    # G draws its cluster from z, as with labels: latent (`ganforge.training.clusters`): no
    # label of the data is used. 0: off, a plain unconditional GAN.
    clusters: int = Field(0, ge=0)
    loss: Literal["non_saturating", "minimax", "hinge"] = "non_saturating"
    d_steps: int = Field(1, ge=1)
    optimizer: Literal["adam", "sgd"] = "adam"
    lr_g: float = Field(2e-4, gt=0.0)
    lr_d: float = Field(2e-4, gt=0.0)
    # The last `lr_decay` of the run (a fraction of its steps) brings both learning rates
    # linearly down to zero, for G to settle rather than circle the equilibrium. 0: constant
    # (no recipe decays: on MNIST it did not help, bench/quality.py's lr_decay screen).
    lr_decay: float = Field(0.0, ge=0.0, le=1.0)
    beta1: float = Field(0.5, ge=0.0, lt=1.0)
    beta2: float = Field(0.999, ge=0.0, lt=1.0)
    momentum: float = Field(0.5, ge=0.0, lt=1.0)
    batch_size: int = Field(128, ge=1)
    # Length: thousands of real images shown to D (StyleGAN's kimg), so a length means the same
    # on any data size. `epochs` (passes over the training split), when set, replaces it;
    # `max_steps` (generator steps), when set, replaces both (`training_steps`).
    kimg: float = Field(256.0, gt=0.0)
    epochs: int | None = Field(None, ge=1)
    max_steps: int | None = Field(None, ge=1)
    label_smoothing: float = Field(0.0, ge=0.0, lt=0.5)
    instance_noise: float = Field(0.0, ge=0.0)
    ema_decay: float | None = Field(None, gt=0.0, lt=1.0)
    # DiffAugment (Zhao et al. 2020): transforms applied to D's inputs, real and fake, in both
    # steps (images only; toy points pass untouched). Empty: D sees the images as they are
    # (Radford et al.'s original).
    augment: list[Literal["color", "translation", "cutout"]] = Field(default_factory=list)
    # R1 penalty (Mescheder et al. 2018): gamma/2 E||grad_x D(x)||^2 on real data, computed
    # every `r1_every` steps and scaled by it (lazy regularisation, Karras et al. 2020). 0: off.
    r1_gamma: float = Field(0.0, ge=0.0)
    r1_every: int = Field(8, ge=1)
    # Mode seeking (MSGAN, Mao et al. 2019): weight of 1/(image distance / latent distance) over
    # pairs of G's samples that share a label, added to G's loss. 0: off.
    mode_seeking: float = Field(0.0, ge=0.0)
    device: Device = "auto"
    # auto: chosen per device by measurement (`ganforge.training.device_policy`): fp32 with
    # TF32 and NCHW on CUDA; channels_last on CPU, with bf16 autocast for images where the CPU
    # has bf16 units; compile never meets channels_last on CUDA (pytorch/pytorch#171622).
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    channels_last: Literal["auto"] | bool = "auto"
    compile: bool = False
    checkpoint_every: int = Field(200, ge=1)
    log_every: int = Field(10, ge=1)
    num_sample_images: int = Field(64, ge=1, le=1024)
    # Quality during training (`ganforge.training.quality`): every `fid_every` steps (0: never)
    # score `fid_samples` samples against the validation split; keep the best or the last G.
    fid_every: int = Field(100, ge=0)
    fid_samples: int = Field(500, ge=2)
    keep: Literal["best", "last"] = "best"

    @field_validator("channels_last", mode="before")
    @classmethod
    def _auto_or_bool(cls, value: object) -> object:
        # Strict: "on", 1 or "yes" would pass as booleans in pydantic's lax mode.
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError("allowed: auto, true or false")

    @field_validator("amp", mode="before")
    @classmethod
    def _off_unquoted(cls, value: object) -> object:
        # YAML 1.1 (params.yaml, `dvc exp run -S train.amp=off`) reads a bare `off` as false.
        return "off" if value is False else value

    @model_validator(mode="after")
    def _options_agree(self) -> TrainConfig:
        if self.loss == "hinge" and self.label_smoothing > 0:
            raise ValueError(
                f"label_smoothing = {self.label_smoothing:g} has no meaning for the hinge loss: "
                "set it to 0 or use loss: non_saturating / minimax"
            )
        if self.pack > 1 and self.batch_size % self.pack:
            raise ValueError(
                f"batch_size = {self.batch_size} is not a multiple of pack = {self.pack}: "
                "PacGAN stacks `pack` samples per D input; pick a batch size divisible by it"
            )
        if self.clusters == 1:
            raise ValueError("clusters = 1 conditions on nothing: set it to 0 (off) or at least 2")
        if self.clusters and self.labels != "none":
            raise ValueError(
                f"clusters = {self.clusters} conditions on k-means clusters instead of the "
                f"data's labels, but labels: {self.labels} asks for the labels: set clusters: 0 "
                "or labels: none"
            )
        if self.pack > 1 and self.clusters:
            raise ValueError(
                f"pack = {self.pack} is implemented for unconditional discriminators only, "
                f"clusters = {self.clusters} trains a conditional one: set pack: 1 or clusters: 0"
            )
        if self.pack > 1 and self.labels in ("conditional", "latent"):
            raise ValueError(
                f"pack = {self.pack} is implemented for unconditional discriminators only, "
                f"labels: {self.labels} trains a conditional one: set pack: 1 or labels: none"
            )
        return self

    @property
    def labelled(self) -> bool:
        """Whether these options ask for the data's labels (a cGAN or a latent class)."""
        return self.labels in ("conditional", "latent")


class EvaluateConfig(Options):
    """How the trained generator is scored."""

    backend: Literal["classifier", "inception"] = "classifier"
    num_samples: int = Field(10000, ge=10)
    batch_size: int = Field(500, ge=1)
    inception_weights: str | None = None
    kid_subset_size: int = Field(1000, ge=2)
    kid_subsets: int = Field(50, ge=1)
    is_splits: int = Field(10, ge=1)
    pr_k: int = Field(3, ge=1)  # k of the k-NN manifolds (Kynkäänniemi et al. 2019)
    coverage_min_share: float = Field(0.1, gt=0.0, le=1.0)  # of a class's expected share
    # generated samples checked for copies: nearest training image in pixel L2 (cost n × N_train)
    copy_samples: int = Field(2000, ge=1)
    use_ema: bool = True
    device: Device = "auto"


class ExportConfig(Options):
    """How the generator is exported to ONNX and checked.

    `opset` 18 and up use torch's dynamo exporter, lower ones its TorchScript exporter.
    `parity_batches` are the batch sizes at which onnxruntime is compared with PyTorch; the
    fp32 file must agree within `atol`, the optional fp16 file (`fp16: true`, written to
    models/generator_fp16.onnx for GPUs) within `fp16_atol` (latency is bench/onnx_latency.py's
    job: it times each runtime in its own process). `rewrite`: the
    exact graph rewrites made before export (`ganforge.export.rewrite`); "projection", faster
    on the CPU than "none" or "subpixel" in bench/onnx_latency.py, exports DCGAN's first layer
    as one Gemm.
    """

    opset: int = Field(18, ge=13, le=23)
    rewrite: Rewrite = "projection"
    use_ema: bool = True
    fp16: bool = False
    parity_batches: list[int] = Field(default_factory=lambda: [1, 7, 64], min_length=1)
    atol: float = Field(1e-4, gt=0.0)
    fp16_atol: float = Field(1e-2, gt=0.0)

    @model_validator(mode="after")
    def _batches_are_positive(self) -> ExportConfig:
        bad = [b for b in self.parity_batches if b < 1]
        if bad:
            raise ValueError(f"parity_batches {self.parity_batches}: batch sizes must be >= 1")
        return self
