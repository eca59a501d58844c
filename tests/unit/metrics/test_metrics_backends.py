"""Feature backends: the classifier as a torchmetrics `feature` module, and the Inception
loading path, exercised with a stand-in weights file of the right shapes (random values)."""

from __future__ import annotations

import pytest
import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from ganforge.classifier import DomainClassifier
from ganforge.metrics import (
    ClassifierFeatureNet,
    InceptionFeatureNet,
    TorchmetricsFeature,
    extract_features,
    find_inception_weights,
    frechet_distance,
)
from ganforge.metrics.features import INCEPTION_FILES


def test_classifier_feature_module_in_torchmetrics_matches_precomputed_features() -> None:
    torch.manual_seed(0)
    net = ClassifierFeatureNet(DomainClassifier(1, 16, 10, width=8, feature_dim=24).eval())
    gen = torch.Generator().manual_seed(0)
    real = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8, generator=gen)
    fake = torch.randint(0, 128, (64, 1, 16, 16), dtype=torch.uint8, generator=gen)
    plain = torch.nn.Sequential(net.classifier.body, net.classifier.embed)  # no num_features:
    probe = FrechetInceptionDistance(feature=plain, normalize=True, input_img_size=(1, 16, 16))
    assert probe.real_features_sum.shape == (24,)  # torchmetrics probed with the real shape
    fid = FrechetInceptionDistance(feature=TorchmetricsFeature(net, "features"))
    fid.update(real, real=True)
    fid.update(fake, real=False)
    expected = frechet_distance(
        extract_features(net, real).features, extract_features(net, fake).features
    )
    assert float(fid.compute()) == pytest.approx(expected, rel=1e-4)
    assert TorchmetricsFeature(net, "logits")(real).shape == (64, 10)


def _stand_in_weights(path) -> None:
    """State dict shaped like torch-fidelity's FeatureExtractorInceptionV3, random values."""
    fe = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    cls = fe.FeatureExtractorInceptionV3
    original_load, original_url = cls.load_state_dict, fe.load_state_dict_from_url
    cls.load_state_dict = lambda self, state, *a, **k: None  # skip the (download of) weights
    fe.load_state_dict_from_url = lambda *a, **k: {}
    try:
        torch.manual_seed(0)
        net = cls("inception-v3-compat", ["2048"])
    finally:
        cls.load_state_dict, fe.load_state_dict_from_url = original_load, original_url
    torch.save(net.state_dict(), path)


def test_inception_backend_loads_a_weights_file_and_agrees_with_torchmetrics_fid(
    tmp_path, monkeypatch
) -> None:
    weights = tmp_path / "hub" / "checkpoints" / INCEPTION_FILES[0]
    weights.parent.mkdir(parents=True)
    _stand_in_weights(weights)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # the torch hub cache is found too
    assert find_inception_weights() == weights
    assert find_inception_weights(weights) == weights

    net = InceptionFeatureNet(str(weights))
    gen = torch.Generator().manual_seed(0)
    grey = torch.randint(0, 256, (3, 1, 32, 32), dtype=torch.uint8, generator=gen)
    feats = extract_features(net, grey, batch_size=2)
    assert feats.features.shape == (3, 2048) and feats.logits.shape == (3, 1008)
    assert torch.isfinite(feats.features).all()
    # the same features as torchmetrics' own FID configured as DESIGN.md says
    tm = FrechetInceptionDistance(
        feature=2048, feature_extractor_weights_path=str(weights), antialias=False
    )
    direct = tm.inception(grey.expand(-1, 3, -1, -1))
    assert torch.allclose(direct, feats.features, atol=1e-4)


def test_missing_inception_weights_name_the_file_and_how_to_get_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError) as err:
        find_inception_weights()
    text = str(err.value)
    assert INCEPTION_FILES[0] in text and str(tmp_path / "hub" / "checkpoints") in text
    assert "curl -LO https://" in text and "evaluate.inception_weights" in text
    with pytest.raises(FileNotFoundError, match="elsewhere.pth"):
        find_inception_weights(tmp_path / "elsewhere.pth")
