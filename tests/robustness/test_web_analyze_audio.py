"""``/analyze`` refuses, with a 4xx that says why, audio it cannot or should not decode.

Headers promising gigabytes of samples, sample rates no analysis can use, float samples
far beyond full scale, empty and random files. No answer is a 500 or shows the
server's temporary paths.
"""

from __future__ import annotations

import io
import tempfile

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

import moodscape.api.routes.analyze as analyze_route
from moodscape.api import create_app
from moodscape.api.analyze import Analysis

SR = 22050


@pytest.fixture(scope="module")
def bundle(demo_run, tmp_path_factory):
    return copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))


@pytest.fixture(scope="module")
def client(bundle):
    with TestClient(create_app(bundle), raise_server_exceptions=False) as test_client:
        yield test_client


def encoded(signal: np.ndarray, rate: int, format: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def tone(seconds: float, rate: int = SR, peak: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (peak * np.sin(2 * np.pi * 330 * t)).astype(np.float32)


def with_stated_frames(flac: bytes, frames: int) -> bytes:
    """A FLAC file whose STREAMINFO header states ``frames`` samples per channel (the audio is unchanged)."""
    assert flac[:4] == b"fLaC" and flac[4] & 0x7F == 0, "STREAMINFO must be the first metadata block"
    packed = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1) | frames
    return flac[:18] + packed.to_bytes(8, "big") + flac[26:]


def upload(client, name: str, data: bytes):
    return client.post("/api/v1/analyze", files={"file": (name, io.BytesIO(data), "application/octet-stream")})


def detail(response) -> str:
    assert response.status_code < 500, response.text
    return str(response.json()["detail"])


# --------------------------------------------------------------------------- decoded size


def test_a_header_promising_gigabytes_of_samples_is_refused_before_decoding(client, analyses):
    rate = 655_350
    flac = with_stated_frames(encoded(np.zeros((rate, 2), np.float32), rate, "FLAC"), 19 * 60 * rate)
    info = sf.info(io.BytesIO(flac))
    assert (info.samplerate, info.channels, round(info.duration)) == (rate, 2, 19 * 60)
    assert len(flac) < 100_000
    response = upload(client, "ultrasonic.flac", flac)
    assert response.status_code == 413, response.text
    assert "GiB" in detail(response) and "decod" in detail(response)
    assert analyses == []


def test_a_long_ordinary_track_is_not_refused_for_its_decoded_size(client, analyses):
    rate = 48_000
    flac = with_stated_frames(encoded(np.zeros((rate, 2), np.float32), rate, "FLAC"), 19 * 60 * rate)
    response = upload(client, "long.flac", flac)
    assert response.status_code == 422 and "stand-in analysis" in detail(response)
    assert len(analyses) == 1


# --------------------------------------------------------------------------- unusable audio


def test_a_1_hz_wav_gets_a_4xx_naming_the_sample_rate(client):
    noise = np.random.default_rng(0).uniform(-0.5, 0.5, 30).astype(np.float32)
    response = upload(client, "one-hertz.wav", encoded(noise, 1))
    assert 400 <= response.status_code < 500, response.text
    assert "sample rate" in detail(response) and "1 Hz" in detail(response)


@pytest.mark.parametrize("peak", [1e20, 3e38])
def test_huge_float_samples_get_a_4xx_naming_the_range(client, peak):
    response = upload(client, "loud.wav", encoded(tone(3.0, peak=peak), SR, subtype="FLOAT"))
    assert 400 <= response.status_code < 500, response.text
    assert "full scale" in detail(response)


def test_non_finite_float_samples_get_a_4xx(client):
    signal = tone(3.0)
    signal[100] = np.nan
    response = upload(client, "nan.wav", encoded(signal, SR, subtype="FLOAT"))
    assert 400 <= response.status_code < 500 and "NaN" in detail(response), response.text


def test_a_non_finite_prediction_is_a_422(client, monkeypatch):
    def nan_analysis(bundle, path, **options):
        return Analysis(duration=3.0, probabilities=np.full(len(labels), np.nan, np.float32), label=0, valence=0.5,
                        arousal=0.5, embedding=np.zeros(512, np.float32), features={}, timeline=[])

    labels = client.get("/api/v1/labels").json()["items"]
    monkeypatch.setattr(analyze_route, "analyze_file", nan_analysis)
    response = upload(client, "song.wav", encoded(tone(3.0), SR))
    assert response.status_code == 422 and "finite" in detail(response)


# --------------------------------------------------------------------------- messages


def assert_no_server_path(text: str) -> None:
    for fragment in (tempfile.gettempdir(), "moodscape-upload", "/tmp/", "upload.wav"):
        assert fragment not in text, f"{fragment!r} in {text!r}"


def test_upload_errors_do_not_show_the_servers_paths(client):
    silent = upload(client, "silent.wav", encoded(np.zeros(3 * SR, np.float32), SR))
    assert silent.status_code == 422 and "silent" in detail(silent)
    assert "'silent.wav'" in detail(silent)
    assert_no_server_path(silent.text)
    short = upload(client, "short.wav", encoded(tone(0.5), SR))
    assert short.status_code == 422 and "shorter" in detail(short)
    assert_no_server_path(short.text)


def test_an_empty_upload_is_called_empty(client):
    for name in ("empty.wav", "empty.mp3", "empty.flac"):
        response = upload(client, name, b"")
        assert response.status_code in (400, 415, 422), response.text
        assert "empty" in detail(response) and "pipe" not in detail(response)
        assert_no_server_path(response.text)


@pytest.mark.parametrize("name", ["noise.wav", "noise.mp3", "noise.flac", "noise.ogg", "noise.aiff"])
def test_random_bytes_are_called_not_audio(client, name):
    noise = np.random.default_rng(1).integers(0, 256, 20_000, dtype=np.uint8).tobytes()
    for data in (noise, b"ID3\x03\x00\x00\x00\x00\x00\x10" + noise, b"\xff\xfb\x90\x64" + noise, b"fLaC" + noise):
        response = upload(client, name, data)
        assert response.status_code == 415, response.text
        assert "not an audio file this server can decode" in detail(response) and "pipe" not in detail(response)
        assert_no_server_path(response.text)
