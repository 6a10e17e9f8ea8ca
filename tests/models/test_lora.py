"""LoRA on the frozen backbone: step-0 identity, frozen weights and BN, counts, saving, merging."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from mel_fixtures import log_mels
from moodscape.errors import ArtifactError, ConfigError
from moodscape.models.backbone import AudioResNet, state_fingerprint
from moodscape.models.lora import (
    adapter_state_dict,
    add_lora,
    load_adapter_state,
    merged_copy,
    parameter_counts,
)

N_LABELS = 5


@pytest.fixture(scope="module")
def pretrained() -> AudioResNet:
    """A backbone whose BatchNorm statistics have seen data, as after pretraining."""
    torch.manual_seed(0)
    model = AudioResNet(n_outputs=N_LABELS).train()
    with torch.no_grad():
        model(log_mels())
    return model.eval()


@pytest.fixture(scope="module")
def before_and_trained(pretrained) -> tuple[dict[str, torch.Tensor], nn.Module]:
    """The adapted model's state before training, and the model after a few steps."""
    adapted = add_lora(copy.deepcopy(pretrained), dropout=0.1)
    before = {key: value.clone() for key, value in adapted.state_dict().items()}
    train_a_few_steps(adapted)
    return before, adapted


def train_a_few_steps(model: nn.Module, steps: int = 2) -> None:
    """Adam on random mels and labels with cross-entropy, in train mode.

    Two steps suffice: the first moves lora_B off zero, the second gives lora_A a gradient.
    """
    model.train()
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    for _ in range(steps):
        logits = model(log_mels())  # (B, K)
        loss = nn.functional.cross_entropy(logits, torch.randint(0, N_LABELS, (4,)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()


def is_trained(name: str) -> bool:
    return "lora_" in name or "modules_to_save" in name


def test_adapted_model_equals_base_model_at_step_zero(pretrained):
    adapted = add_lora(copy.deepcopy(pretrained))
    mel = log_mels()
    with torch.no_grad():
        expected = pretrained(mel)
        assert (adapted.eval()(mel) - expected).abs().max() <= 1e-6
        assert (adapted.train()(mel) - expected).abs().max() <= 1e-6  # BN frozen: same


def test_training_changes_only_adapters_and_head(before_and_trained):
    before, adapted = before_and_trained
    assert all(is_trained(name) for name, p in adapted.named_parameters() if p.requires_grad)
    after = adapted.state_dict()
    frozen = [key for key in before if not is_trained(key)]
    assert any("running_mean" in key for key in frozen)
    assert any("num_batches_tracked" in key for key in frozen)
    assert [key for key in frozen if not torch.equal(before[key], after[key])] == []
    assert all(not torch.equal(before[key], after[key]) for key in before if is_trained(key))


def conv_adapter_size(conv: nn.Conv2d, r: int) -> int:
    """lora_A: in -> r with the conv's kernel; lora_B: 1×1, r -> out."""
    kernel_h, kernel_w = conv.kernel_size
    return r * conv.in_channels * kernel_h * kernel_w + r * conv.out_channels


@pytest.mark.parametrize("r", [1, 4, 8, 16])
def test_adapter_count_per_rank(pretrained, r):
    block_convs = [
        module
        for name, module in pretrained.named_modules()
        if isinstance(module, nn.Conv2d) and name.startswith("layer")
    ]
    counts = parameter_counts(add_lora(copy.deepcopy(pretrained), r=r))
    print(f"r={r}: {counts}")
    assert len(block_convs) == 19  # 16 block convs + 3 downsample convs
    assert counts["adapters"] == sum(conv_adapter_size(conv, r) for conv in block_convs)
    assert counts["backbone"] == sum(p.numel() for p in pretrained.parameters()) - counts["head"]
    assert counts["trainable"] == counts["adapters"] + counts["head"]
    if r <= 8:
        assert counts["adapter_share"] <= 0.03


def test_adapter_state_round_trips_into_a_fresh_adapted_model(pretrained, before_and_trained):
    _, adapted = before_and_trained
    state = adapter_state_dict(adapted)
    assert state and all("lora_A" in key or "lora_B" in key or ".head." in key for key in state)
    head_keys = {key for key in state if ".head." in key}
    assert head_keys == {"base_model.model.head.weight", "base_model.model.head.bias"}

    fresh = add_lora(copy.deepcopy(pretrained), dropout=0.1).eval()
    load_adapter_state(fresh, state)
    mel = log_mels()
    with torch.no_grad():
        assert torch.equal(fresh(mel), adapted(mel))


def test_mismatched_adapter_state_is_refused_with_key_names(pretrained):
    adapted = add_lora(copy.deepcopy(pretrained))
    state = adapter_state_dict(adapted)
    missing_key = "base_model.model.layer1.0.conv1.lora_A.weight"
    del state[missing_key]
    state["base_model.model.conv1.lora_A.weight"] = torch.zeros(1)
    with pytest.raises(ArtifactError) as error:
        load_adapter_state(adapted, state)
    assert missing_key in str(error.value) and "conv1.lora_A" in str(error.value)

    other_rank = adapter_state_dict(add_lora(copy.deepcopy(pretrained), r=4))
    with pytest.raises(ArtifactError, match=r"wrong shape .*\(4, 64, 3, 3\) \(model \(8, 64, 3, 3\)\)"):
        load_adapter_state(adapted, other_rank)


def test_merged_copy_computes_the_same_and_leaves_the_adapters_unmerged(before_and_trained):
    _, adapted = before_and_trained
    base_weight = adapted.base_model.model.layer2[0].conv1.base_layer.weight.clone()
    merged = merged_copy(adapted)
    assert isinstance(merged, AudioResNet) and not any("lora_" in key for key in merged.state_dict())
    mel = log_mels()
    with torch.no_grad():
        assert torch.allclose(merged.eval()(mel), adapted(mel), atol=1e-4, rtol=1e-4)
    assert not any(getattr(module, "merged", False) for module in adapted.modules())
    assert torch.equal(adapted.base_model.model.layer2[0].conv1.base_layer.weight, base_weight)
    assert not torch.equal(merged.layer2[0].conv1.weight, base_weight)


def test_fingerprint_of_the_backbone_survives_adaptation(pretrained):
    model = copy.deepcopy(pretrained)
    fingerprint = state_fingerprint(model)
    adapted = add_lora(model)
    assert state_fingerprint(adapted) == fingerprint


def test_unknown_targets_and_bad_rank_are_config_errors(pretrained):
    with pytest.raises(ConfigError, match="no_such_layer"):
        add_lora(copy.deepcopy(pretrained), target_modules=["no_such_layer"])
    with pytest.raises(ConfigError, match="rank"):
        add_lora(copy.deepcopy(pretrained), r=0)
