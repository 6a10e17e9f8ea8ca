"""Checkpoint files: saved atomically, loaded with ``weights_only=True``, described in JSON.

Every checkpoint ``model.pt`` gets a description beside it
(:func:`moodscape.artifacts.checkpoint_description`): its plain entries (label names,
fingerprints, settings, shapes; every tensor left out) and the SHA-256 of the checkpoint's
bytes. Whatever only needs to know *what* a model is (the web app's start-up check, the
report) reads that JSON with :func:`moodscape.artifacts.read_checkpoint_description`
(no torch, no unpickling); the networks themselves are loaded by :func:`read_checkpoint`
on the device :func:`resolve_device` picks.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from moodscape import artifacts
from moodscape.errors import ArtifactError, ConfigError

_LEFT_OUT = object()


def save_checkpoint(checkpoint: Mapping[str, Any], path: str | os.PathLike, *, describe: bool = True) -> None:
    """``torch.save`` a checkpoint dict atomically, then write its JSON description.

    Parameters
    ----------
    checkpoint : mapping
        Tensors and plain values only (what ``weights_only=True`` loads).
    path : path
    describe : bool
        Write the description (in-progress states that only training reads skip it).

    Raises
    ------
    StorageError
        When the disk cannot take the file (see :func:`moodscape.artifacts.atomic_path`).
    """
    path = Path(path)
    # serialised in memory, so a failing disk raises its own OSError (torch reports one as
    # "unexpected pos"); through a stream the zip's records are named "archive/…", not after
    # a file, so the same checkpoint always has the same bytes (and SHA-256)
    serialised = io.BytesIO()
    torch.save(dict(checkpoint), serialised)
    artifacts.write_bytes(path, serialised.getbuffer())
    if describe:
        sha256 = hashlib.sha256(serialised.getbuffer()).hexdigest()
        artifacts.write_json(artifacts.checkpoint_description(path), describe_checkpoint(checkpoint, sha256))


def describe_checkpoint(checkpoint: Mapping[str, Any], sha256: str) -> dict[str, Any]:
    """The description of a checkpoint whose saved bytes have the SHA-256 ``sha256`` (hex).

    Returns
    -------
    dict
        ``sha256``, ``entries`` (the checkpoint without its tensors) and ``shapes``: the
        shape of every tensor by its path of keys joined with ``/``
        (``"state_dict/head.weight": [6, 512]``).
    """
    entries = _plain(checkpoint)
    return {"sha256": sha256, "entries": {} if entries is _LEFT_OUT else entries,
            "shapes": dict(_tensor_shapes(checkpoint, ""))}


def resolve_device(device: str = "auto") -> torch.device:
    """The device to load a model on: ``"auto"`` → CUDA when available, else CPU; any other name is checked and returned."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available")
    return torch.device(device)


def read_checkpoint(path: str | os.PathLike, what: str, required: Sequence[str] = ()) -> dict:
    """Load a checkpoint dict with ``torch.load(weights_only=True)`` on CPU.

    Parameters
    ----------
    path : path
    what : str
        What the file should be, for messages (``"classifier checkpoint"``, ...).
    required : sequence of str
        Keys the dict must have.

    Raises
    ------
    ArtifactError
        If the file is missing, unreadable or damaged, holds anything but tensors and
        plain values (refused as unsafe: it may be crafted), is not a dict, or lacks a
        required key; the message names the file.
    """
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ArtifactError(f"{what} {path} does not exist") from None
    except pickle.UnpicklingError as error:
        raise ArtifactError(_refused(what, path, error)) from None
    except OSError as error:
        raise ArtifactError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except Exception as error:  # a damaged zip or pickle comes in many types
        raise ArtifactError(f"{what} {path} is not a readable torch checkpoint (corrupt, truncated, or not a "
                            f"checkpoint: {_first_sentence(error)}); write it again or use another file") from None
    if not isinstance(checkpoint, Mapping):
        raise ArtifactError(f"{what} {path} holds a {type(checkpoint).__name__}, not a dict")
    missing = [key for key in required if key not in checkpoint]
    if missing:
        raise ArtifactError(f"{what} {path} lacks {', '.join(missing)}")
    return dict(checkpoint)


def _refused(what: str, path: str | os.PathLike, error: pickle.UnpicklingError) -> str:
    """The message for a checkpoint the safe unpickler refused: what it held, and that it must not be trusted."""
    return (f"{what} {path} was refused as unsafe by torch.load(weights_only=True): it holds more than tensors and "
            f"plain values ({_refusal_detail(error)}), so it may be crafted or come from another program; "
            "do not load it: use a checkpoint written by moodscape, or a state_dict of tensors only")


def _refusal_detail(error: pickle.UnpicklingError) -> str:
    """What the safe unpickler refused, without torch's advice around it (which suggests loading the file unsafely)."""
    advice = ("weights_only", "Weights only", "Please file an issue", "Check the documentation")
    lines = [line.strip() for line in str(error).splitlines()]
    found = [line.removeprefix("WeightsUnpickler error:").strip(" .") for line in lines if line and not any(a in line for a in advice)]
    return "; ".join(item for item in found if item) or "an object it does not allow"


def _first_sentence(error: Exception) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text.split(". ")[0].rstrip(".")


def _tensor_shapes(value: Any, prefix: str):
    if isinstance(value, torch.Tensor):
        yield prefix, list(value.shape)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _tensor_shapes(item, f"{prefix}/{key}" if prefix else str(key))


def _plain(value: Any) -> Any:
    """``value`` without its tensors (and without containers of nothing but tensors)."""
    if isinstance(value, Mapping):
        kept = {str(key): plain for key, item in value.items() if (plain := _plain(item)) is not _LEFT_OUT}
        return kept if kept or not value else _LEFT_OUT
    if isinstance(value, (list, tuple)):
        items = [_plain(item) for item in value]
        return _LEFT_OUT if any(item is _LEFT_OUT for item in items) else items
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return _LEFT_OUT
