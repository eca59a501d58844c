"""One entry point per network role, dispatching on `spec.arch`."""

from __future__ import annotations

from torch import nn

from ganforge.models.spec import GeneratorSpec


def build_generator(spec: GeneratorSpec) -> nn.Module:
    """The generator described by `spec`: forward(z [B, nz], labels [B] | None) -> [B, *shape].

    A latent-class spec gives the conditional network wrapped so that it draws its label
    from z (`LatentClassGenerator`): forward(z) only.
    """
    generator: nn.Module
    if spec.arch == "dcgan":
        from ganforge.models.dcgan import DCGANGenerator

        channels, size, _ = spec.sample_shape
        generator = DCGANGenerator(
            spec.nz, channels, size, spec.ngf, spec.num_classes, upsample=spec.g_upsample
        )
    else:
        from ganforge.models.mlp import MLPGenerator

        # For mlp, ngf / ndf are the widths of the `mlp_layers` hidden layers of G / D.
        generator = MLPGenerator(
            spec.nz, spec.sample_shape, [spec.ngf] * spec.mlp_layers, spec.num_classes
        )
    if spec.latent_class:
        from ganforge.models.latent_class import LatentClassGenerator

        return LatentClassGenerator(generator, spec.class_prior)
    return generator


def build_discriminator(spec: GeneratorSpec) -> nn.Module:
    """The matching discriminator: forward(x, labels | None) -> logits [B]."""
    if spec.arch == "dcgan":
        from ganforge.models.dcgan import DCGANDiscriminator

        if not spec.is_image:
            raise ValueError(
                f"train.model = dcgan discriminates images but the data are points of shape "
                f"{spec.sample_shape}: set train.model: auto (or mlp) for toy data sets"
            )
        channels, size, _ = spec.sample_shape
        return DCGANDiscriminator(
            channels,
            size,
            spec.ndf,
            spec.num_classes,
            conditioning=spec.d_conditioning,
            norm=spec.d_norm,
            mbstd_group=spec.mbstd_group,
            pack=spec.pack,
        )
    from ganforge.models.mlp import MLPDiscriminator

    return MLPDiscriminator(
        spec.sample_shape,
        [spec.ndf] * spec.mlp_layers,
        spec.num_classes,
        maxout_pieces=spec.maxout_pieces,
        dropout=spec.dropout,
        input_dropout=spec.input_dropout,
        conditioning=spec.d_conditioning,
        pack=spec.pack,
    )
