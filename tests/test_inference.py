"""Stage 5: the bundle reproduces the trained classifier; bad tracks fail alone; runs resume."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from torch import nn

from moodscape.audio import mel_from_audio
from moodscape.errors import ConfigError
from moodscape.inference import (
    EMBEDDING_COLUMNS,
    embedding_matrix,
    export_bundle,
    infer_chunk,
    load_bundle,
    lookup_tables,
    predict_mels,
    track_duration,
)
from moodscape.models.av import AVEnsemble, av_checkpoint
from moodscape.models.backbone import build_backbone
from moodscape.models.lora import add_lora
from moodscape.pipeline.parallel import map_tracks
from moodscape.training.av import AVConfig, cross_fit_av
from moodscape.training.data import embed_tracks, predict_tracks
from moodscape.models.checkpoint import save_checkpoint

SR = 22050
CROP, N_CROPS, BATCH = 64, 3, 5
LABELS = ["Calm", "Energetic / Party", "Dark"]
SECONDS = {"tone_a": 3.0, "tone_b": 2.2, "short": 1.2}  # "short" has fewer frames than a crop
MOODS = {"tone_a": (0.8, 0.2), "tone_b": (0.2, 0.8), "short": (0.5, 0.5)}  # planted (valence, arousal)
MOOD_GAP = 0.3  # between planted levels: a prediction within half of it is nearest its own mood


def write_tone(path, seconds: float, frequency: float, seed: int) -> None:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).normal(0, 0.02, t.size)
    sf.write(path, (0.3 * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32), SR)


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict:
    """Three decodable tracks, a file that is not audio, and their mels."""
    folder = tmp_path_factory.mktemp("audio")
    paths = {}
    for index, (track_id, seconds) in enumerate(SECONDS.items()):
        paths[track_id] = folder / f"{track_id}.wav"
        write_tone(paths[track_id], seconds, 220.0 * (index + 1), seed=index)
    broken = folder / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    mels = {track_id: mel_from_audio(path) for track_id, path in paths.items()}
    mel_file = folder / "tone_a.npy"
    np.save(mel_file, mels["tone_a"])
    return {"paths": paths, "broken": broken, "mels": mels, "mel_file": mel_file, "folder": folder}


@pytest.fixture(scope="module")
def classifier(audio) -> nn.Module:
    """A LoRA classifier whose adapters and head are not zero, on a backbone calibrated to the mels."""
    torch.manual_seed(0)
    backbone = build_backbone(None)
    batchnorms = [module for module in backbone.modules() if isinstance(module, nn.BatchNorm2d)]
    for module in batchnorms:
        module.momentum = None  # one pass in train mode sets the running statistics
    crops = torch.from_numpy(np.stack([mel[:, :CROP] for mel in audio["mels"].values() if mel.shape[1] >= CROP]))[:, None]
    with torch.no_grad():
        backbone.train()(crops)
    backbone.replace_head(len(LABELS))
    model = add_lora(backbone, r=4, alpha=8)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return model.eval()


@pytest.fixture(scope="module")
def av_model(audio, classifier) -> AVEnsemble:
    """The stage-4 regressor, cross-fitted on a tiny problem: each tone's embedding (plus noise) has its planted mood.

    40 copies of the classifier's embedding of each track, with noise a tenth of each
    dimension's spread over the tracks, targets ``MOODS``, MSE mode, 3 folds: a real
    :class:`AVEnsemble` whose outputs mean something for these tracks.
    """
    track_ids = list(MOODS)
    embeddings = embed_tracks(classifier, audio["mels"], track_ids, crop_frames=CROP, n_eval_crops=N_CROPS, batch_size=32)
    copies, rng = 40, np.random.default_rng(0)
    noise = 0.1 * embeddings.std(axis=0) * rng.normal(size=(copies * len(track_ids), embeddings.shape[1]))  # per dimension
    x = (np.repeat(embeddings, copies, axis=0) + noise).astype(np.float32)  # (120, 512)
    targets = np.repeat(np.array([MOODS[track] for track in track_ids]), copies, axis=0)
    no_pairs = pd.DataFrame(columns=["songid_a", "songid_b", "type", "higher_value"])
    config = AVConfig(mode="mse", hidden=32, dropout=0.1, lr=1e-2, epochs=200, patience=30, batch_size=32, folds=3)
    return cross_fit_av(x, [f"copy_{i}" for i in range(len(x))], targets, no_pairs, config).ensemble


@pytest.fixture(scope="module")
def bundle_path(tmp_path_factory, classifier, av_model):
    bundle = export_bundle(
        classifier, LABELS, av_checkpoint(av_model),
        crop_frames=CROP, n_eval_crops=N_CROPS, batch_size=BATCH, device="cpu",
    )
    path = tmp_path_factory.mktemp("bundle") / "bundle.pt"
    save_checkpoint(bundle, path)
    return path


def audio_chunk(audio) -> list:
    return [(track_id, ("audio", str(path))) for track_id, path in audio["paths"].items()]


def test_bundle_reproduces_the_unmerged_lora_classifier(audio, classifier, av_model, bundle_path):
    track_ids = list(audio["paths"])
    results = infer_chunk(bundle_path, audio_chunk(audio))  # the default builder: an AVEnsemble
    rows = pd.DataFrame([{"track_id": track_id, **row} for track_id, row, _ in results])
    options = {"crop_frames": CROP, "n_eval_crops": N_CROPS, "batch_size": 32}
    embeddings = embed_tracks(classifier, audio["mels"], track_ids, **options)
    probabilities = torch.softmax(torch.from_numpy(predict_tracks(classifier, audio["mels"], track_ids, **options)), dim=1).numpy()
    valence_arousal = av_model.predict(embeddings)
    assert [error for _, _, error in results] == [None] * 3
    np.testing.assert_allclose(embedding_matrix(rows), embeddings, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(rows[[f"prob_{i}" for i in range(3)]].to_numpy(), probabilities, atol=1e-4)
    np.testing.assert_allclose(rows[["valence", "arousal"]].to_numpy(), valence_arousal, rtol=1e-4, atol=1e-4)
    # the regressor learned the planted moods: every track lands nearest its own
    planted = np.array([MOODS[track_id] for track_id in rows["track_id"]])
    assert np.abs(rows[["valence", "arousal"]].to_numpy() - planted).max() < MOOD_GAP / 2, rows[["track_id", "valence", "arousal"]]
    np.testing.assert_allclose(rows["duration"], [3.0, 2.2, 1.2], atol=256 / 12000)
    with classifier.disable_adapter():  # the adapters change the outputs: merging mattered
        unadapted = embed_tracks(classifier, audio["mels"], track_ids, **options)
    assert np.abs(unadapted - embeddings).max() > 1e-2


def test_bundle_loads_with_weights_only_and_without_peft(bundle_path, tmp_path):
    bundle = torch.load(bundle_path, weights_only=True)
    assert bundle["label_names"] == LABELS and bundle["crop_frames"] == CROP
    assert bundle["av"]["model_args"] == {"n_members": 3, "in_features": 512, "hidden": 32, "dropout": 0.1}
    assert not any("lora" in key for key in bundle["state_dict"])
    no_av = export_bundle(load_bundle(bundle_path).model, LABELS, None, device="cpu")
    save_checkpoint(no_av, tmp_path / "no_av.pt")
    script = (
        "import sys; from moodscape.inference import load_bundle; "
        f"bundle = load_bundle({str(tmp_path / 'no_av.pt')!r}); "
        "assert bundle.av_model is None and not bundle.model.training; "
        "assert 'peft' not in sys.modules, 'a worker imported peft'"
    )
    subprocess.run([sys.executable, "-c", script], check=True)


def test_a_track_without_regressor_gets_nan_mood(bundle_path, audio):
    bundle = load_bundle(bundle_path)
    bundle.av_model = None
    outputs = predict_mels(bundle, [audio["mels"]["tone_a"]])
    assert outputs.probabilities.shape == (1, 3) and outputs.embeddings.shape == (1, 512)
    assert np.isnan(outputs.valence_arousal).all()


def test_a_bad_file_fails_alone_and_the_other_tracks_get_rows(audio, bundle_path):
    chunk = [
        ("tone_a", ("audio", str(audio["paths"]["tone_a"]))),
        ("broken", ("audio", str(audio["broken"]))),
        ("missing_mel", ("mel", str(audio["folder"] / "nothing.npy"))),
        ("from_mel", ("mel", str(audio["mel_file"]))),
    ]
    results = infer_chunk(bundle_path, chunk)
    assert [track_id for track_id, _, _ in results] == ["tone_a", "broken", "missing_mel", "from_mel"]
    errors = {track_id: error for track_id, _, error in results}
    assert errors["tone_a"] is None and errors["from_mel"] is None
    assert errors["broken"].startswith("AudioError: ") and "broken.wav" in errors["broken"]
    assert errors["missing_mel"].startswith("AudioError: ") and "not found" in errors["missing_mel"]
    rows = {track_id: row for track_id, row, _ in results}
    assert rows["broken"] is None and rows["missing_mel"] is None
    # the mel file holds that track's mel
    from_mel, from_audio = dict(rows["from_mel"]), dict(rows["tone_a"])
    np.testing.assert_allclose(from_mel.pop("embedding"), from_audio.pop("embedding"), rtol=1e-5, atol=1e-6)
    assert from_mel == pytest.approx(from_audio, rel=1e-5, abs=1e-6)


def test_map_and_lookup_tables_give_the_documented_columns(audio, bundle_path, tmp_path):
    tasks = {track_id: argument for track_id, argument in audio_chunk(audio)}
    tasks["broken"] = ("audio", str(audio["broken"]))
    infer = functools.partial(infer_chunk, bundle_path)
    options = {"chunk_dir": tmp_path / "chunks", "fingerprint": {"bundle": "v1"}, "scheduler": "synchronous",
               "n_workers": 1, "chunk_size": 2, "show_progress": False, "batched": True}
    outcome = map_tracks(infer, tasks, **options)
    tracks = pd.DataFrame({"track_id": ["short", "tone_a", "tone_b"],
                           "tags": [["calm"], ["happy", "party"], np.array(["dark"])]})
    lookup, embeddings = lookup_tables(outcome.rows, LABELS, tracks)

    assert [track for track, _ in outcome.failures] == ["broken"]
    assert list(lookup.columns) == ["track_id", "new_acoustic_label", "probability", "p_Calm", "p_Energetic / Party",
                                    "p_Dark", "valence", "arousal", "tags", "duration"]
    assert lookup["track_id"].tolist() == ["tone_a", "tone_b", "short"]
    probabilities = lookup[["p_Calm", "p_Energetic / Party", "p_Dark"]].to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert lookup["new_acoustic_label"].tolist() == [LABELS[i] for i in probabilities.argmax(axis=1)]
    np.testing.assert_array_equal(lookup["probability"], probabilities.max(axis=1))
    assert lookup["tags"].tolist() == ["happy,party", "dark", "calm"]
    assert lookup["duration"].tolist() == [track_duration(audio["mels"][t].shape[1]) for t in ("tone_a", "tone_b", "short")]
    assert list(embeddings.columns) == ["track_id", *EMBEDDING_COLUMNS]
    assert embeddings["track_id"].tolist() == ["tone_a", "tone_b", "short"]
    assert all(embeddings[column].dtype == np.float32 for column in EMBEDDING_COLUMNS)

    def must_not_run(chunk):
        raise AssertionError("a finished track was computed again")

    again = map_tracks(must_not_run, {t: a for t, a in tasks.items() if t != "broken"}, **options)
    assert again.resumed == 3 and again.failures == []
    pd.testing.assert_frame_equal(again.rows, outcome.rows)


def test_export_refuses_labels_that_do_not_fit_the_head(classifier):
    with pytest.raises(ConfigError, match="3 outputs but 2 label names"):
        export_bundle(classifier, LABELS[:2])
