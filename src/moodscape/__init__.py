"""moodscape: acoustically coherent mood labels, LoRA audio models and valence/arousal."""

__version__ = "0.1.0"
