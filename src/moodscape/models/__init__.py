"""Networks only, no training loops: the ResNet-18 audio backbone and its LoRA adapters.

``moodscape.models.lora`` is imported on its own (``from moodscape.models.lora import
add_lora``): it pulls in peft and transformers, which code that only embeds audio
should not pay for.
"""

from moodscape.models.backbone import (
    EMBEDDING_DIM,
    AudioResNet,
    backbone_checkpoint,
    build_backbone,
    load_backbone_weights,
    state_fingerprint,
)

__all__ = [
    "EMBEDDING_DIM",
    "AudioResNet",
    "backbone_checkpoint",
    "build_backbone",
    "load_backbone_weights",
    "state_fingerprint",
]
