"""Generators and discriminators: shapes, the DCGAN recipe, maxout MLPs, conditioning, files."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganforge.models import (
    GeneratorSpec,
    build_discriminator,
    build_generator,
    load_discriminator,
    load_generator,
    save_generator,
)
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.mlp import Maxout, MLPDiscriminator, MLPGenerator


@pytest.mark.parametrize("size", [16, 32, 64, 128])
@pytest.mark.parametrize("num_classes", [0, 10])
def test_dcgan_shapes(size: int, num_classes: int) -> None:
    g = DCGANGenerator(nz=8, channels=3, image_size=size, ngf=4, num_classes=num_classes)
    d = DCGANDiscriminator(channels=3, image_size=size, ndf=4, num_classes=num_classes)
    labels = torch.tensor([1, 7]) if num_classes else None
    x = g(torch.randn(2, 8), labels)
    assert x.shape == (2, 3, size, size)
    assert x.abs().max() <= 1.0
    assert d(x, labels).shape == (2,)


@pytest.mark.parametrize("size", [8, 48, 512])
def test_dcgan_refuses_sizes_it_cannot_build(size: int) -> None:
    with pytest.raises(ValueError, match="power-of-two"):
        DCGANGenerator(image_size=size)


def test_dcgan_follows_radford_recipe() -> None:
    g, d = DCGANGenerator(100, 1, 32, 64), DCGANDiscriminator(1, 32, 64)
    # no BatchNorm on G's output layer (Tanh right after the last conv) ...
    g_layers = list(g.net)
    assert isinstance(g_layers[-1], nn.Tanh) and isinstance(g_layers[-2], nn.ConvTranspose2d)
    # ... nor on D's first layer (conv straight into LeakyReLU(0.2))
    d_layers = list(d.features)
    assert isinstance(d_layers[0], nn.Conv2d) and isinstance(d_layers[1], nn.LeakyReLU)
    assert d_layers[1].negative_slope == 0.2
    # no pooling, no hidden fully connected layers
    kinds = {type(m) for m in list(g.modules()) + list(d.modules())}
    assert not kinds & {nn.MaxPool2d, nn.AvgPool2d, nn.Linear}
    # N(0, 0.02) weights, BatchNorm scale N(1, 0.02)
    convs = [m.weight for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    std = torch.cat([w.flatten() for w in convs]).std().item()
    assert std == pytest.approx(0.02, rel=0.05)
    bns = [m.weight for m in d.modules() if isinstance(m, nn.BatchNorm2d)]
    assert torch.cat(bns).mean().item() == pytest.approx(1.0, abs=0.01)


def test_mlp_generator_output_ranges() -> None:
    images = MLPGenerator(nz=10, sample_shape=(1, 8, 8), hidden=(32, 32))
    points = MLPGenerator(nz=2, sample_shape=(2,), hidden=16)
    z = torch.randn(5, 10) * 100
    assert images(z).shape == (5, 1, 8, 8) and images(z).abs().max() <= 1.0
    # toy points live on R^D: linear output, no squashing
    assert isinstance(points.net[-1], nn.Linear)
    assert points(torch.randn(5, 2)).shape == (5, 2)


def test_mlp_discriminator_maxout_and_dropout() -> None:
    d = MLPDiscriminator(sample_shape=(1, 8, 8), hidden=(24, 24), maxout_pieces=5, dropout=0.5)
    maxouts = [m for m in d.modules() if isinstance(m, Maxout)]
    assert len(maxouts) == 2 and maxouts[0].linear.out_features == 24 * 5
    assert sum(isinstance(m, nn.Dropout) for m in d.modules()) == 2
    x = torch.randn(4, 1, 8, 8)
    assert d(x).shape == (4,)
    d.eval()  # dropout off: deterministic
    assert torch.equal(d(x), d(x))
    # a maxout unit is the max of its pieces
    m = Maxout(3, 2, 4)
    h = torch.randn(6, 3)
    expected = m.linear(h).view(6, 2, 4).max(dim=2).values
    assert torch.allclose(m(h), expected)
    relu_d = MLPDiscriminator((2,), 8, maxout_pieces=0, dropout=0.0)
    assert not any(isinstance(m, (Maxout, nn.Dropout)) for m in relu_d.modules())
    with pytest.raises(ValueError, match="maxout_pieces"):
        MLPDiscriminator((2,), 8, maxout_pieces=1)


def test_conditional_mlp_uses_labels() -> None:
    g = MLPGenerator(nz=4, sample_shape=(2,), hidden=8, num_classes=3)
    d = MLPDiscriminator((2,), 8, num_classes=3, dropout=0.0)
    z = torch.randn(1, 4).repeat(3, 1)
    out = g(z, torch.tensor([0, 1, 2]))
    assert not torch.allclose(out[0], out[1])  # same z, other class: other sample
    x = torch.randn(1, 2).repeat(3, 1)
    assert not torch.allclose(d(x, torch.tensor([0, 1, 2]))[0], d(x, torch.tensor([0, 1, 2]))[1])
    with pytest.raises(ValueError, match="conditional"):
        g(z)
    with pytest.raises(ValueError, match="conditional"):
        d(x)


@pytest.mark.parametrize("arch", ["dcgan", "mlp"])
@pytest.mark.parametrize("conditioning", ["projection", "concat"])
def test_conditional_discriminator_reads_the_label_its_way(arch: str, conditioning: str) -> None:
    spec = GeneratorSpec(
        arch=arch,
        nz=4,
        sample_shape=(1, 16, 16),
        ngf=4,
        ndf=4,
        num_classes=3,
        dropout=0.0,
        d_conditioning=conditioning,
    )
    d = build_discriminator(spec).eval()
    first = next(m for m in d.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    width_in = first.in_channels if arch == "dcgan" else first.in_features
    base = 1 if arch == "dcgan" else 16 * 16
    if conditioning == "concat":  # one-hot y joins the input; no projection embedding
        assert width_in == base + 3 and d.embed is None
    else:
        assert width_in == base and isinstance(d.embed, nn.Embedding)
    x = torch.randn(1, 1, 16, 16).repeat(3, 1, 1, 1)
    with torch.no_grad():
        logits = d(x, torch.tensor([0, 1, 2]))
    assert logits.shape == (3,) and len(set(logits.tolist())) == 3  # same x, other verdicts
    with pytest.raises(ValueError, match="conditional"):
        d(x)


def test_label_planes_keep_channels_last() -> None:
    from ganforge.models.dcgan import concat_label_planes

    x = torch.randn(2, 3, 8, 8).contiguous(memory_format=torch.channels_last)
    joined = concat_label_planes(x, torch.tensor([2, 0]), 4)
    assert joined.shape == (2, 7, 8, 8)
    assert joined.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(joined[:, :3], x)
    assert torch.equal(joined[0, 3:, 5, 5], torch.tensor([0.0, 0.0, 1.0, 0.0]))
    assert torch.equal(joined[1, 3:].sum(dim=(1, 2)), torch.tensor([64.0, 0.0, 0.0, 0.0]))


def test_builders_dispatch_and_refuse_dcgan_on_points() -> None:
    spec = GeneratorSpec(arch="mlp", nz=3, sample_shape=(1,), ngf=8, ndf=8, maxout_pieces=3)
    assert isinstance(build_generator(spec), MLPGenerator)
    d = build_discriminator(spec)
    assert isinstance(d, MLPDiscriminator)
    assert [m for m in d.modules() if isinstance(m, Maxout)][0].pieces == 3
    paper = GeneratorSpec(arch="mlp", nz=3, sample_shape=(4,), input_dropout=0.2, dropout=0.5)
    rates = [m.p for m in build_discriminator(paper).modules() if isinstance(m, nn.Dropout)]
    assert rates == [0.2, 0.5, 0.5]  # on the input, then after each hidden layer
    with pytest.raises(ValueError, match="train.model = dcgan .* points.*train.model: auto"):
        build_generator(GeneratorSpec(arch="dcgan", nz=3, sample_shape=(2,)))
    with pytest.raises(ValueError, match="mlp"):
        build_discriminator(GeneratorSpec(arch="dcgan", nz=3, sample_shape=(2,)))


def test_auto_arch_is_picked_from_the_data_and_saved_resolved() -> None:
    points = GeneratorSpec(arch="auto", nz=3, sample_shape=(2,), ngf=8, ndf=8)
    images = GeneratorSpec(arch="auto", nz=3, sample_shape=(1, 16, 16), ngf=8, ndf=8)
    assert points.arch == "mlp" and images.arch == "dcgan"
    assert isinstance(build_generator(points), MLPGenerator)
    assert isinstance(build_generator(images), DCGANGenerator)
    # the spec stored with a checkpoint names the built architecture, never "auto"
    assert GeneratorSpec.model_validate(points.model_dump()).model_dump()["arch"] == "mlp"


def test_save_and_load_generator_round_trip(tmp_path) -> None:
    spec = GeneratorSpec(
        arch="dcgan",
        nz=8,
        sample_shape=(1, 16, 16),
        ngf=4,
        ndf=4,
        num_classes=2,
        class_names=("a", "b"),
    )
    g, d = build_generator(spec), build_discriminator(spec)
    ema = build_generator(spec)
    path = tmp_path / "generator.pt"
    save_generator(path, spec, g, ema=ema, discriminator=d, extra={"run_id": "abc", "step": 3})
    loaded, spec2, extra = load_generator(path)
    assert spec2 == spec and extra["run_id"] == "abc" and extra["weights"] == "ema"
    assert not loaded.training
    z, y = torch.randn(2, 8), torch.tensor([0, 1])
    with torch.no_grad():
        assert torch.equal(loaded(z, y), ema.eval()(z, y))
    raw, _, extra_raw = load_generator(path, use_ema=False)
    assert extra_raw["weights"] == "raw"
    with torch.no_grad():
        assert torch.equal(raw(z, y), g.eval()(z, y))
    d2 = load_discriminator(path)
    assert d2 is not None and not d2.training
    with torch.no_grad():
        assert torch.equal(d2(loaded(z, y), y), d.eval()(loaded(z, y), y))


# ----------------------------------------------------------------------------- D options
def test_pacgan_packs_samples_along_channels() -> None:
    from ganforge.models.dcgan import pack_samples

    x = torch.arange(6 * 2 * 4 * 4, dtype=torch.float32).view(6, 2, 4, 4)
    packed = pack_samples(x, 3)
    assert packed.shape == (2, 6, 4, 4)
    for i in range(2):
        for j in range(3):  # sample i·3 + j sits in channels 2j, 2j+1 of packed sample i
            assert torch.equal(packed[i, 2 * j : 2 * j + 2], x[3 * i + j])
    d = DCGANDiscriminator(channels=2, image_size=16, ndf=4, pack=3)
    assert d.features[0].in_channels == 6 and d(torch.randn(6, 2, 16, 16)).shape == (2,)
    with pytest.raises(ValueError, match="multiple of 3"):
        pack_samples(torch.randn(7, 2, 4, 4), 3)


def test_pacgan_for_points_joins_consecutive_samples_end_to_end() -> None:
    from ganforge.models.mlp import pack_flat

    x = torch.arange(8 * 2, dtype=torch.float32).view(8, 2)
    packed = pack_flat(x, 4)
    assert packed.shape == (2, 8)
    for i in range(2):
        for j in range(4):  # sample i·4 + j sits in columns 2j, 2j+1 of packed row i
            assert torch.equal(packed[i, 2 * j : 2 * j + 2], x[4 * i + j])
    d = MLPDiscriminator((2,), hidden=16, maxout_pieces=0, dropout=0.0, pack=4)
    assert d.features[1].in_features == 8 and d(torch.randn(8, 2)).shape == (2,)
    # The packed logit depends on every member of its group and on no other sample.
    points = torch.randn(8, 2, requires_grad=True)
    (grad,) = torch.autograd.grad(d(points)[0], points)
    assert grad[:4].abs().sum(dim=1).min() > 0 and torch.equal(grad[4:], torch.zeros(4, 2))
    with pytest.raises(ValueError, match="multiple of 4"):
        d(torch.randn(6, 2))
    with pytest.raises(ValueError, match="unconditional"):
        MLPDiscriminator((2,), hidden=16, num_classes=3, pack=2)


def test_mlp_layers_sets_the_hidden_depth_of_both_nets() -> None:
    from pydantic import ValidationError

    from ganforge.config import TrainConfig
    from ganforge.models.builders import build_discriminator, build_generator

    spec = GeneratorSpec(
        arch="mlp", nz=2, sample_shape=(2,), ngf=8, ndf=6, mlp_layers=3, maxout_pieces=0
    )
    g, d = build_generator(spec), build_discriminator(spec)
    g_linears = [m for m in g.modules() if isinstance(m, torch.nn.Linear)]
    d_linears = [m for m in d.features.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in g_linears] == [8, 8, 8, 2]  # 3 hidden layers + output
    assert [m.out_features for m in d_linears] == [6, 6, 6]  # 3 hidden layers, then the head
    assert GeneratorSpec(arch="mlp", nz=2, sample_shape=(2,)).mlp_layers == 2  # old specs
    with pytest.raises(ValidationError, match="mlp_layers"):
        TrainConfig(mlp_layers=0)


def test_pacgan_batch_not_divisible_is_refused_at_config_time() -> None:
    from pydantic import ValidationError

    from ganforge.config import TrainConfig

    with pytest.raises(ValidationError, match="batch_size = 10 is not a multiple of pack = 4"):
        TrainConfig(batch_size=10, pack=4)
    with pytest.raises(ValidationError, match="unconditional"):
        TrainConfig(pack=2, labels="conditional")


def test_spectral_norm_bounds_the_top_singular_value_of_every_d_layer() -> None:
    torch.manual_seed(0)
    d = DCGANDiscriminator(channels=1, image_size=16, ndf=8, num_classes=3, norm="spectral")
    assert not any(isinstance(m, nn.BatchNorm2d) for m in d.modules())
    with torch.no_grad():
        for _ in range(30):  # each training-mode forward runs one power iteration
            d(torch.randn(4, 1, 16, 16), torch.tensor([0, 1, 2, 0]))
    layers = [m for m in d.modules() if isinstance(m, nn.Conv2d | nn.Embedding)]
    assert len(layers) == 4  # 2 stride-2 convs, the head, the projection embedding
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)
    plain = DCGANDiscriminator(channels=1, image_size=16, ndf=8)
    with torch.no_grad():
        plain.features[0].weight.mul_(100)  # unnormalised weights can be anything
    assert torch.linalg.matrix_norm(plain.features[0].weight.flatten(1), ord=2) > 2


def test_minibatch_stddev_adds_one_channel_with_the_batch_std() -> None:
    from ganforge.models.dcgan import minibatch_stddev

    h = torch.randn(4, 3, 2, 2)
    out = minibatch_stddev(h, 4)
    assert out.shape == (4, 4, 2, 2) and torch.equal(out[:, :3], h)
    expected = h.std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(out[:, 3], expected.expand(4, 2, 2), rtol=1e-4, atol=1e-4)
    # groups of 2 (by stride, as in Karras et al.): samples 0 and 2 share a group, 1 and 3
    grouped = minibatch_stddev(h, 2)
    g0 = torch.stack([h[0], h[2]]).std(dim=0, unbiased=False).mean()
    g1 = torch.stack([h[1], h[3]]).std(dim=0, unbiased=False).mean()
    torch.testing.assert_close(
        grouped[:, 3, 0, 0], torch.stack([g0, g1, g0, g1]), rtol=1e-4, atol=1e-4
    )
    d = DCGANDiscriminator(channels=1, image_size=16, ndf=4, mbstd_group=4)
    assert d.head.in_channels == 4 * 2 + 1 and d(torch.randn(8, 1, 16, 16)).shape == (8,)


def test_resize_generator_doubles_by_bilinear_then_3x3_conv() -> None:
    from ganforge.models.dcgan import _up2

    g = DCGANGenerator(nz=8, channels=1, image_size=32, ngf=4, upsample="resize")
    assert g(torch.randn(5, 8)).shape == (5, 1, 32, 32)
    # no transposed conv but the 4x4 projection of z; three bilinear x2 stages (4 -> 32)
    transposed = [m for m in g.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert len(transposed) == 1 and transposed[0].stride == (1, 1)
    ups = [m for m in g.modules() if isinstance(m, nn.Upsample)]
    assert len(ups) == 3 and all(u.mode == "bilinear" and u.scale_factor == 2 for u in ups)
    assert isinstance(list(g.net)[-1], nn.Tanh)
    # with a centre-tap 3x3 conv the stage is bilinear interpolation, half-pixel centres:
    # 2 px [a, b] -> 4 px [a, (3a + b)/4, (a + 3b)/4, b], separably in rows and columns
    layer = _up2(1, 1, "resize")
    with torch.no_grad():
        layer[1].weight.zero_()
        layer[1].weight[0, 0, 1, 1] = 1.0
        x = torch.tensor([[1.0, 5.0], [9.0, 13.0]])[None, None]
        row = torch.tensor([[1.0, 0.0], [0.75, 0.25], [0.25, 0.75], [0.0, 1.0]])
        assert torch.allclose(layer(x)[0, 0], row @ x[0, 0] @ row.T)


def test_generator_upsample_is_a_spec_option() -> None:
    spec = GeneratorSpec(arch="dcgan", nz=4, sample_shape=(1, 16, 16), ngf=4, g_upsample="resize")
    assert any(isinstance(m, nn.Upsample) for m in build_generator(spec).modules())
    assert not any(
        isinstance(m, nn.Upsample)
        for m in build_generator(spec.model_copy(update={"g_upsample": "transpose"})).modules()
    )
    with pytest.raises(ValueError):
        GeneratorSpec(arch="dcgan", nz=4, sample_shape=(1, 16, 16), g_upsample="nearest")
