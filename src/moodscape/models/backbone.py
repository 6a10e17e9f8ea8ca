"""ResNet-18 on log-mel spectrograms: the audio backbone and its weight files.

The network is torchvision's ResNet-18 with a one-channel stem. Its input is a log-mel
spectrogram ``(B, 1, n_mels, T)`` in dB, its embedding the 512-d output of the global
average pool, and a linear ``head`` turns the embedding into logits.

Each input crop is first taken relative to its own mean level (its mean dB over bands and
frames is subtracted): how loud a file was mastered, or the dB reference of whoever computed
the mels, says nothing about its music, and a network that sees it learns it (on the demo,
a backbone trained on absolute levels encoded the mastering gain with r = 0.98 and its
arousal followed it). Loudness *within* the crop (dynamics, accents, the balance of bands)
is kept; the scale is not normalised. Then ``input_norm``, a ``BatchNorm2d(1)``, learns the
mean and variance of the centred mels the backbone was pretrained on and stores them in
the checkpoint next to the weights, so inference scales inputs exactly as training did.

A checkpoint is a dict in the nanoGPT way, ``{"model_args": {...}, "state_dict": {...},
...}``, from which :func:`build_backbone` rebuilds the model; a bare state_dict is
accepted too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from moodscape.errors import ArtifactError, DataError
from moodscape.models.checkpoint import read_checkpoint

EMBEDDING_DIM = 512
HEAD_PREFIX = "head."
# Prefixes that wrappers add to parameter names: DDP, torch.compile, peft.
_WRAPPER_PREFIXES = ("module.", "_orig_mod.", "base_model.model.")
_MAX_LISTED_KEYS = 5


class AudioResNet(nn.Module):
    """ResNet-18 with a one-channel stem and a replaceable linear head.

    Parameters
    ----------
    n_outputs : int or None
        Number of logits of the head; ``None`` builds no head and ``forward`` returns
        the embedding.

    Examples
    --------
    >>> model = AudioResNet(n_outputs=56)
    >>> model(torch.randn(4, 1, 96, 64)).shape
    torch.Size([4, 56])
    """

    def __init__(self, n_outputs: int | None = None) -> None:
        super().__init__()
        from torchvision.models import resnet18  # here: torchvision's import costs seconds a checkpoint reader need not pay

        resnet = resnet18(weights=None)
        self.input_norm = nn.BatchNorm2d(1)
        self.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = resnet.bn1
        self.relu = resnet.relu
        self.maxpool = resnet.maxpool
        self.layer1 = resnet.layer1
        self.layer2 = resnet.layer2
        self.layer3 = resnet.layer3
        self.layer4 = resnet.layer4
        self.avgpool = resnet.avgpool
        nn.init.kaiming_normal_(self.conv1.weight, mode="fan_out", nonlinearity="relu")
        self.head: nn.Linear | None = None
        self.replace_head(n_outputs)
        self.batchnorm_frozen = False

    @property
    def model_args(self) -> dict:
        """The arguments that rebuild this model with :func:`build_backbone`."""
        n_outputs = None if self.head is None else self.head.out_features
        return {"n_outputs": n_outputs}

    def replace_head(self, n_outputs: int | None) -> None:
        """Put a freshly initialised linear head with ``n_outputs`` logits (or none)."""
        self.head = None if n_outputs is None else nn.Linear(EMBEDDING_DIM, n_outputs)

    def embed(self, mel: torch.Tensor) -> torch.Tensor:
        """Return the 512-d pooled penultimate features of log-mel spectrograms.

        Parameters
        ----------
        mel : torch.Tensor [shape=(B, 1, n_mels, T)]
            Log-mel spectrograms in dB; any ``n_mels`` and ``T`` of at least 32 each.

        Returns
        -------
        torch.Tensor [shape=(B, 512)]
        """
        if mel.ndim != 4 or mel.shape[1] != 1:
            raise DataError(f"expected log-mels of shape (B, 1, n_mels, T), got {tuple(mel.shape)}")
        centred = mel - mel.mean(dim=(2, 3), keepdim=True)  # (B, 1, F, T), mastering level removed
        x = self.input_norm(centred)  # (B, 1, F, T)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))  # (B, 64, F/4, T/4)
        x = self.layer1(x)  # (B, 64, F/4, T/4)
        x = self.layer2(x)  # (B, 128, F/8, T/8)
        x = self.layer3(x)  # (B, 256, F/16, T/16)
        x = self.layer4(x)  # (B, 512, F/32, T/32)
        return torch.flatten(self.avgpool(x), 1)  # (B, 512)

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """Return head logits ``(B, n_outputs)``, or the embedding when there is no head."""
        embedding = self.embed(mel)  # (B, 512)
        return embedding if self.head is None else self.head(embedding)

    def freeze_batchnorm(self) -> None:
        """Keep every BatchNorm layer in eval mode from now on, even under ``train()``.

        Their running statistics then never change; their affine parameters are frozen
        separately, through ``requires_grad``.
        """
        self.batchnorm_frozen = True
        self.train(self.training)

    def train(self, mode: bool = True) -> AudioResNet:
        """Set training mode; BatchNorm stays in eval mode once frozen."""
        super().train(mode)
        if self.batchnorm_frozen:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


def build_backbone(n_outputs: int | None = None) -> AudioResNet:
    """Build a randomly initialised :class:`AudioResNet` (``model_args`` of a checkpoint)."""
    return AudioResNet(n_outputs=n_outputs)


def backbone_checkpoint(model: AudioResNet, **extra) -> dict:
    """Return the checkpoint dict of ``model``: ``model_args``, ``state_dict``, ``extra``.

    ``extra`` holds whatever else the caller records (step, config, optimiser state,
    best score); it must be made of tensors and plain Python values so that the file
    loads with ``weights_only=True``.
    """
    return {"model_args": model.model_args, "state_dict": model.state_dict(), **extra}


def load_backbone_weights(model: AudioResNet, path: str | Path) -> dict:
    """Load backbone weights from a checkpoint dict or a bare state_dict file.

    The head is not loaded: it is replaced for each task. Every other tensor of the
    model must be in the file with the same shape.

    Parameters
    ----------
    model : AudioResNet
        The model to fill, in place.
    path : str or Path
        A file written by ``torch.save`` of :func:`backbone_checkpoint` or of a
        ``state_dict``.

    Returns
    -------
    dict
        The checkpoint's other entries (``model_args``, step, ...); empty for a bare
        state_dict.

    Raises
    ------
    ArtifactError
        If the file cannot be read with ``weights_only=True``, or its keys or shapes do
        not match the backbone; the message lists the offending keys.
    """
    checkpoint = read_checkpoint(path, "backbone checkpoint")
    if "state_dict" in checkpoint:
        state = checkpoint.pop("state_dict")
    else:
        state, checkpoint = checkpoint, {}
    file_state = _backbone_state(state)
    check_same_tensors(_backbone_state(model.state_dict()), file_state, f"backbone checkpoint {path}")
    model.load_state_dict(file_state, strict=False)
    return checkpoint


def state_fingerprint(model_or_state: nn.Module | Mapping[str, torch.Tensor]) -> str:
    """Return the sha256 of the backbone's tensors: names, dtypes, shapes and bytes.

    The head and LoRA adapters are left out and wrapper prefixes are removed, so the
    fingerprint of a backbone is the same before and after :func:`moodscape.models.lora.add_lora`;
    a classifier checkpoint records it to name the backbone it was trained on.
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) else model_or_state
    digest = hashlib.sha256()
    for name, tensor in sorted(_backbone_state(state).items()):
        tensor = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def backbone_key(name: str) -> str | None:
    """The plain backbone name of a state key, or ``None`` for head and adapter keys."""
    for prefix in _WRAPPER_PREFIXES:
        name = name.removeprefix(prefix)
    if name.startswith(HEAD_PREFIX) or "lora_" in name:
        return None
    return name.replace(".base_layer.", ".")


def check_same_tensors(
    expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor], source: str
) -> None:
    """Raise ArtifactError naming missing, unexpected and misshapen keys of ``found``.

    ``source`` names what ``found`` came from in the message (e.g. a checkpoint path).
    """
    reshaped = [
        f"{key} {_shape(found[key])} (model {_shape(expected[key])})"
        for key in sorted(expected.keys() & found.keys())
        if _shape(found[key]) != _shape(expected[key])
    ]
    problems = [
        _key_listing("missing", sorted(expected.keys() - found.keys())),
        _key_listing("unexpected", sorted(found.keys() - expected.keys())),
        _key_listing("wrong shape", reshaped),
    ]
    if any(problems):
        mismatch = "; ".join(problem for problem in problems if problem)
        raise ArtifactError(f"{source} does not fit the model: {mismatch}")


def _backbone_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    canonical = {key: backbone_key(key) for key in state}
    return {name: state[key] for key, name in canonical.items() if name is not None}


def _shape(value) -> tuple | None:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else None


def _key_listing(label: str, keys: list[str]) -> str:
    """``"label (n): k1, k2, ..."`` naming at most a few keys, or ``""`` for none."""
    if not keys:
        return ""
    more = ", ..." if len(keys) > _MAX_LISTED_KEYS else ""
    return f"{label} ({len(keys)}): {', '.join(keys[:_MAX_LISTED_KEYS])}{more}"
