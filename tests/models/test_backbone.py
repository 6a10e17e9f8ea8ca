"""AudioResNet: shapes, frozen BatchNorm, weight files and fingerprints."""

from __future__ import annotations

import pytest
import torch

from mel_fixtures import log_mels
from moodscape.errors import ArtifactError, DataError
from moodscape.models.backbone import (
    AudioResNet,
    backbone_checkpoint,
    build_backbone,
    load_backbone_weights,
    state_fingerprint,
)

N_MELS = 96


@pytest.mark.parametrize("frames", [64, 200])
def test_embedding_is_512_for_any_number_of_frames(frames):
    model = build_backbone(n_outputs=7).eval()
    with torch.no_grad():
        embedding = model.embed(log_mels(batch=2, frames=frames))
    assert embedding.shape == (2, 512)
    assert model.head(embedding).shape == (2, 7)


def test_model_without_head_returns_the_embedding():
    model = build_backbone(n_outputs=None).eval()
    mel = log_mels()
    with torch.no_grad():
        assert torch.equal(model(mel), model.embed(mel))
    assert model.model_args == {"n_outputs": None}


def test_stem_takes_one_channel_and_rejects_other_shapes():
    model = build_backbone(n_outputs=3)
    assert model.conv1.in_channels == 1
    with pytest.raises(DataError, match=r"\(B, 1, n_mels, T\)"):
        model(torch.randn(4, N_MELS, 64))


def test_frozen_batchnorm_stays_in_eval_under_train():
    model = build_backbone(n_outputs=3)
    model.freeze_batchnorm()
    model.train()
    batchnorms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert model.training and model.head.training
    assert batchnorms and not any(bn.training for bn in batchnorms)


def test_weights_load_from_checkpoint_dict_and_bare_state_dict(tmp_path):
    trained = build_backbone(n_outputs=56)
    torch.save(backbone_checkpoint(trained, step=10), tmp_path / "checkpoint.pt")
    torch.save(trained.state_dict(), tmp_path / "state.pt")
    expected = {"checkpoint.pt": {"model_args": {"n_outputs": 56}, "step": 10}, "state.pt": {}}
    for name, expected_rest in expected.items():
        model = build_backbone(n_outputs=5)  # a new head of another size
        rest = load_backbone_weights(model, tmp_path / name)
        assert rest == expected_rest
        assert state_fingerprint(model) == state_fingerprint(trained)
        assert torch.equal(model.layer4[1].bn2.running_var, trained.layer4[1].bn2.running_var)


def test_wrong_shapes_and_missing_keys_are_named(tmp_path):
    state = build_backbone(n_outputs=5).state_dict()
    state["conv1.weight"] = torch.zeros(64, 3, 7, 7)  # an RGB stem
    del state["input_norm.running_mean"]
    torch.save(state, tmp_path / "rgb.pt")
    with pytest.raises(ArtifactError) as error:
        load_backbone_weights(build_backbone(n_outputs=5), tmp_path / "rgb.pt")
    assert "conv1.weight (64, 3, 7, 7) (model (64, 1, 7, 7))" in str(error.value)
    assert "missing (1): input_norm.running_mean" in str(error.value)


class NotATensor:
    """Any object that weights_only unpickling must refuse."""


def test_file_with_a_non_tensor_payload_is_refused(tmp_path):
    torch.save({"state_dict": build_backbone().state_dict(), "extra": NotATensor()}, tmp_path / "evil.pt")
    with pytest.raises(ArtifactError, match="weights_only"):
        load_backbone_weights(build_backbone(), tmp_path / "evil.pt")
    with pytest.raises(ArtifactError, match="does not exist"):
        load_backbone_weights(build_backbone(), tmp_path / "absent.pt")


def test_fingerprint_ignores_the_head_and_sees_every_backbone_tensor():
    model = build_backbone(n_outputs=5)
    fingerprint = state_fingerprint(model)
    model.replace_head(9)
    assert state_fingerprint(model.state_dict()) == fingerprint
    model.layer3[0].bn1.num_batches_tracked += 1
    assert state_fingerprint(model) != fingerprint


def test_wrapper_prefixes_are_ignored(tmp_path):
    model = AudioResNet(n_outputs=5)
    ddp_state = {f"module.{key}": value for key, value in model.state_dict().items()}
    torch.save(ddp_state, tmp_path / "ddp.pt")
    fresh = AudioResNet(n_outputs=5)
    load_backbone_weights(fresh, tmp_path / "ddp.pt")
    assert state_fingerprint(fresh) == state_fingerprint(ddp_state) == state_fingerprint(model)
