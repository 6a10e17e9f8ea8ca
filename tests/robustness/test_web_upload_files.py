"""Hostile files and forms sent to ``/analyze``: decompression bombs, lying headers, wrong types and names.

- Bombs: small files of long silence (FLAC, OGG, MP3) that decode to more than the
  analysis may hold, and headers that claim more than the file holds, are refused from
  their header, before a single frame is decoded and within a few MiB of memory.
- Headers that lie the other way, or about channels and rates, are decoded for what the
  file holds, or refused as undecodable.
- The declared content type counts for nothing (the bytes decide); forms without the
  ``file`` field get a 422 naming it; any file name is only a name: the upload is saved
  under a name of the server's, and the answers quote only the name's last part.
- Each upload is decoded once at most (:func:`decoded_frames`).
"""

from __future__ import annotations

import io
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from audio_formats import write_audio
from decoded_frames import decoded_frames
from fastapi.testclient import TestClient
from serving_bundle import copy_bundle

from moodscape.api import create_app
from moodscape.api.analyze import MAX_DECODED_SAMPLES
from moodscape.audio import audio_info

SR = 22050
MEMORY_BOUND = 32 << 20
"""Most bytes Python may allocate while the app refuses a bomb (its decoded audio would take hundreds of MiB)."""
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)
BOUNDARY = "moodscapeboundary"


@pytest.fixture(scope="module")
def client(demo_run, tmp_path_factory):
    """A client over the demo bundle, its networks loaded (torch's import would count in a memory bound)."""
    with TestClient(create_app(copy_bundle(demo_run, tmp_path_factory.mktemp("bundle"))), raise_server_exceptions=False) as test_client:
        test_client.app.state.services.inference_bundle()
        yield test_client


# --------------------------------------------------------------------------- files


def audio_file(signal: np.ndarray, rate: int, format: str = "WAV", subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, signal, rate, format=format, subtype=subtype)
    return buffer.getvalue()


def song(seconds: float = 3.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2).astype(np.float32)


def silence(format: str, rate: int, channels: int, seconds: float) -> bytes:
    """``seconds`` of digital silence, encoded block by block (never held whole in memory)."""
    buffer, block = io.BytesIO(), np.zeros((1 << 16, channels), np.int16)
    with sf.SoundFile(buffer, "w", rate, channels, format=format) as out:
        for start in range(0, int(seconds * rate), len(block)):
            out.write(block[: min(len(block), int(seconds * rate) - start)])
    return buffer.getvalue()


def ffmpeg_file(tmp_path: Path, name: str, signal: np.ndarray, rate: int) -> bytes:
    """``signal`` encoded by FFmpeg in the format of ``name``'s extension (m4a, aac, opus)."""
    return write_audio(tmp_path / name, signal, rate).read_bytes()


def with_xing_frames(mp3: bytes, frames: int) -> bytes:
    """An MP3 whose Xing header claims ``frames`` MPEG frames (the audio is unchanged)."""
    at = mp3.index(b"Xing")
    assert int.from_bytes(mp3[at + 4 : at + 8], "big") & 1, "the Xing header must carry a frame count"
    return mp3[: at + 8] + frames.to_bytes(4, "big") + mp3[at + 12 :]


def with_flac_frames(flac: bytes, frames: int) -> bytes:
    """A FLAC file whose STREAMINFO states ``frames`` samples per channel (0: unknown, as a stream's)."""
    packed = int.from_bytes(flac[18:26], "big") & ~((1 << 36) - 1) | frames
    return flac[:18] + packed.to_bytes(8, "big") + flac[26:]


def with_wav_field(wav: bytes, offset: int, fmt: str, value: int) -> bytes:
    """A WAV file with one field of its ``fmt`` chunk (offset from the file's start) replaced."""
    assert wav[12:16] == b"fmt ", "the fmt chunk must come first"
    return wav[:offset] + struct.pack(fmt, value) + wav[offset + struct.calcsize(fmt) :]


def with_data_size(wav: bytes, size: int) -> bytes:
    """A WAV file whose ``data`` chunk claims ``size`` bytes."""
    at = wav.index(b"data") + 4
    return wav[:at] + struct.pack("<I", size) + wav[at + 4 :]


def ogg_crc(page: bytes) -> int:
    """The CRC-32 of an Ogg page (polynomial 0x04C11DB7, not reflected, its own CRC field zeroed)."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def with_last_granule(ogg: bytes, granule: int) -> bytes:
    """An Ogg file whose last page claims the stream ends at sample ``granule`` (CRC recomputed)."""
    at = ogg.rindex(b"OggS")
    page = bytearray(ogg[at:])
    struct.pack_into("<q", page, 6, granule)
    struct.pack_into("<I", page, 22, 0)
    struct.pack_into("<I", page, 22, ogg_crc(bytes(page)))
    return ogg[:at] + bytes(page)


def upload(client, name: str, data: bytes, content_type: str = "application/octet-stream", field: str = "file"):
    return client.post("/api/v1/analyze", files={field: (name, io.BytesIO(data), content_type)})


def detail(response) -> str:
    assert response.status_code < 500, response.text[:300]
    return str(response.json()["detail"])


def traced_peak(call) -> tuple[object, int]:
    """``call()``'s result and the most bytes Python (numpy included) held at once during it."""
    tracemalloc.start()
    try:
        result = call()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- bombs


BOMBS = {
    # name: (builder, file name, status, words the answer must hold)
    "FLAC, 8 channels at 655 kHz": (lambda: silence("FLAC", 655_350, 8, 22.1), "bomb.flac", 413,
                                    ["0.43 GiB", "8 channels of 22 s at 655350 Hz"]),
    "OGG, 21 minutes": (lambda: silence("OGG", 8000, 1, 21 * 60), "bomb.ogg", 413, ["21 minutes", "limit is 20 minutes"]),
    "MP3, 21 minutes": (lambda: silence("MP3", 8000, 1, 21 * 60), "bomb.mp3", 413, ["21 minutes", "limit is 20 minutes"]),
    "m4a, 21 minutes": (lambda path: ffmpeg_file(path, "bomb.m4a", np.zeros(8000 * 21 * 60, np.float32), 8000), "bomb.m4a", 413,
                        ["21 minutes", "limit is 20 minutes"]),
    "MP3 whose Xing header claims 2**31 frames": (lambda: with_xing_frames(audio_file(song(), SR, "MP3"), 2**31 - 1), "bomb.mp3",
                                                  413, ["minutes of audio"]),
    "FLAC of unknown length": (lambda: with_flac_frames(audio_file(song(), SR, "FLAC"), 0), "stream.flac", 422,
                               ["does not say how many samples"]),
}


@pytest.mark.parametrize("name", BOMBS)
def test_a_bomb_is_refused_from_its_header_without_decoding(client, analyses, tmp_path, name):
    build, file_name, status, words = BOMBS[name]
    data = build(tmp_path) if file_name.endswith(".m4a") else build()
    (tmp_path / file_name).write_bytes(data)
    info = audio_info(tmp_path / file_name)
    assert info.channels * info.frames > MAX_DECODED_SAMPLES or info.duration > 20 * 60, "the file must decode to too much"
    assert len(data) < 2 << 20
    with decoded_frames() as reads:
        response, peak = traced_peak(lambda: upload(client, file_name, data))
    assert response.status_code == status, response.text
    assert all(word in detail(response) for word in words), detail(response)
    assert reads == [] and analyses == [], "refused after decoding"
    assert peak < MEMORY_BOUND, f"{peak / (1 << 20):.0f} MiB allocated"


def test_raw_aac_holding_far_more_than_its_estimated_length_stops_decoding_early(client, tmp_path):
    rate, noise = 8000, np.random.default_rng(0).uniform(-0.9, 0.9, 5 * 8000)
    data = ffmpeg_file(tmp_path, "liar.aac", np.concatenate([noise, np.zeros(10 * 60 * rate)]).astype(np.float32), rate)
    with decoded_frames() as reads:
        response, peak = traced_peak(lambda: upload(client, "liar.aac", data))
    assert response.status_code == 422 and "its header declares" in detail(response), response.text
    assert sum(reads) < 3 * 60 * rate, f"decoded {sum(reads) / rate:.0f} s of a 10-minute file whose header says less"
    assert peak < MEMORY_BOUND, f"{peak / (1 << 20):.0f} MiB allocated"


# --------------------------------------------------------------------------- other lying headers


def test_a_wav_claiming_4_gib_of_data_is_analysed_for_the_3_seconds_it_holds(client):
    data = with_data_size(audio_file(song(), SR, subtype="PCM_16"), 0xFFFFFFF0)
    with decoded_frames() as reads:
        response = upload(client, "liar.wav", data)
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(3.0, abs=0.05)
    assert sum(reads) == int(3.0 * SR), "decoded once, only what the file holds"


def test_an_ogg_whose_last_page_claims_years_is_analysed_for_what_it_holds(client):
    data = with_last_granule(audio_file(song(), SR, "OGG"), 10**15)
    response = upload(client, "liar.ogg", data)
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(3.0, abs=0.05)


def test_a_wav_claiming_less_data_than_it_holds_decodes_only_the_claim(client):
    data = with_data_size(audio_file(song(60.0), SR, subtype="PCM_16"), 200)
    with decoded_frames() as reads:
        response = upload(client, "short-claim.wav", data)
    assert response.status_code == 422 and "shorter than 1 s" in detail(response)
    assert sum(reads) <= 100


@pytest.mark.parametrize("field, offset, fmt, value", [
    ("channels", 22, "<H", 65535),
    ("sample rate", 24, "<I", 4_000_000_000),
    ("sample rate", 24, "<I", 0),
    ("bits per sample", 34, "<H", 0),
])
def test_a_wav_with_an_impossible_format_is_not_audio(client, analyses, field, offset, fmt, value):
    data = with_wav_field(audio_file(song(), SR, subtype="PCM_16"), offset, fmt, value)
    with decoded_frames() as reads:
        response = upload(client, "odd.wav", data)
    assert response.status_code in (415, 422), f"{field}={value}: {response.status_code} {response.text}"
    assert reads == [] and analyses == []


def test_a_wav_of_1024_channels_is_decoded_and_found_too_short(client):
    data = with_wav_field(audio_file(song(), SR, subtype="PCM_16"), 22, "<H", 1024)
    assert sf.info(io.BytesIO(data)).channels == 1024
    response = upload(client, "channels.wav", data)
    assert response.status_code == 422 and "shorter than 1 s" in detail(response)


def test_rates_far_above_audio_rates_are_analysed_within_the_decoded_size_bound(client):
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, 2_400_000).astype(np.float32)
    response = upload(client, "ultrasonic.wav", audio_file(noise, 2_000_000, subtype="PCM_16"))
    assert response.status_code == 200, response.text
    assert response.json()["duration"] == pytest.approx(1.2, abs=0.05)


# --------------------------------------------------------------------------- content types and forms


def test_the_declared_type_does_not_matter_the_bytes_do(client, analyses):
    assert detail(upload(client, "song.wav", audio_file(song(), SR), "image/png")).endswith("stand-in analysis")
    assert len(analyses) == 1
    refused = upload(client, "cover.wav", PNG, "audio/wav")
    assert refused.status_code == 415 and "not an audio file this server can decode" in detail(refused)
    named = upload(client, "cover.png", PNG, "audio/wav")
    assert named.status_code == 415 and "unsupported file type .png" in detail(named)
    assert len(analyses) == 1


def multipart(*parts: bytes) -> bytes:
    return b"".join(b"--%s\r\n%s\r\n" % (BOUNDARY.encode(), part) for part in parts) + b"--%s--\r\n" % BOUNDARY.encode()


def file_part(disposition: bytes, data: bytes) -> bytes:
    return b"Content-Disposition: form-data; name=\"file\"; " + disposition + b"\r\nContent-Type: audio/wav\r\n\r\n" + data


FORM = f"multipart/form-data; boundary={BOUNDARY}"
FORMS = {
    "no file, a text field": (multipart(b'Content-Disposition: form-data; name="note"\r\n\r\nhello'), FORM),
    "the file under another name": (multipart(b'Content-Disposition: form-data; name="audio"; filename="a.wav"\r\n\r\nRIFF'), FORM),
    "file as a text field": (multipart(b'Content-Disposition: form-data; name="file"\r\n\r\nRIFF'), FORM),
    "file named only by filename*": (multipart(file_part(b"filename*=UTF-8''%C3%A9t%C3%A9.wav", b"RIFF")), FORM),
    "an empty form": (multipart(), FORM),
    "JSON": (b'{"file": "UklGRg=="}', "application/json"),
    "a URL-encoded form": (b"file=RIFF", "application/x-www-form-urlencoded"),
    "no body": (b"", None),
    "no boundary": (multipart(file_part(b'filename="a.wav"', b"RIFF")), "multipart/form-data"),
    "another boundary": (multipart(file_part(b'filename="a.wav"', b"RIFF")), "multipart/form-data; boundary=other"),
    "garbage": (b"\x00\xff" * 500, FORM),
    "cut short": (multipart(file_part(b'filename="a.wav"', b"RIFF"))[:80], FORM),
    "a line break in the file name": (multipart(file_part(b'filename="a\r\nX-Injected: 1.wav"', b"RIFF")), FORM),
    "a 10,000-character file name": (multipart(file_part(b'filename="' + b"a" * 10_000 + b'.wav"', b"RIFF")), FORM),
}


@pytest.mark.parametrize("form", FORMS)
def test_a_form_without_a_usable_file_gets_a_4xx_naming_the_problem(client, analyses, form):
    body, content_type = FORMS[form]
    response = client.post("/api/v1/analyze", content=body, headers={"Content-Type": content_type} if content_type else {})
    assert 400 <= response.status_code < 500, f"{form}: {response.status_code} {response.text[:300]}"
    message = detail(response)
    assert "file" in message or "multipart" in message.lower() or "boundary" in message.lower(), message
    assert analyses == []


def test_two_files_get_one_analysis_and_no_error(client, analyses):
    response = client.post("/api/v1/analyze", files=[("file", ("a.wav", audio_file(song(), SR), "audio/wav")),
                                                     ("file", ("b.wav", audio_file(song(), SR), "audio/wav"))])
    assert response.status_code == 422 and len(analyses) == 1


# --------------------------------------------------------------------------- file names


NAMES = {
    "unicode": ("chanson d'été 🎵 ünïcödé.wav", "chanson d'été 🎵 ünïcödé.wav"),
    "right-to-left override": ("\u202egnp.wav", "\u202egnp.wav"),
    "4,000 characters": ("a" * 4000 + ".wav", "a" * 4000 + ".wav"),
    "parent folders": ("../../../../../tmp/moodscape-pwned.wav", "moodscape-pwned.wav"),
    "absolute": ("/etc/moodscape-pwned.wav", "moodscape-pwned.wav"),
    "mixed folders": ("a/b/../c.wav", "c.wav"),
    "upper-case suffix": ("SONG.WAV", "SONG.WAV"),
    "two suffixes": ("song.exe.wav", "song.exe.wav"),
}


@pytest.mark.parametrize("kind", NAMES)
def test_a_file_name_is_only_a_name(client, analyses, kind):
    sent, shown = NAMES[kind]
    response = upload(client, sent, audio_file(song(), SR), "audio/wav")
    assert response.status_code == 422 and detail(response) == f"{shown!r}: stand-in analysis", response.text[:300]
    [saved] = analyses
    assert saved.parent.name.startswith("moodscape-upload-") and saved.name == "upload.wav"
    assert not saved.parent.exists(), "the upload's folder must be removed"
    assert not Path("/tmp/moodscape-pwned.wav").exists() and not Path("/etc/moodscape-pwned.wav").exists()


@pytest.mark.parametrize("disposition, shown", [
    (b'filename="a\x00b.wav"', "'a\\x00b.wav'"),
    (b'filename="\xe9t\xe9 \xff.wav"', "'\u00e9t\u00e9 \u00ff.wav'"),
    (b"filename=unquoted.wav", "'unquoted.wav'"),
])
def test_raw_bytes_in_a_file_name_are_quoted_safely(client, analyses, disposition, shown):
    response = client.post("/api/v1/analyze", content=multipart(file_part(disposition, audio_file(song(), SR))),
                           headers={"Content-Type": FORM})
    assert response.status_code == 422 and detail(response) == f"{shown}: stand-in analysis"


@pytest.mark.parametrize("name", [".", "..", "/", ".wav", "song", "song.wav.exe", "x." + "a" * 3000])
def test_a_name_without_an_audio_suffix_gets_a_415(client, analyses, name):
    response = upload(client, name, audio_file(song(), SR), "audio/wav")
    assert response.status_code == 415 and "unsupported file type" in detail(response)
    assert analyses == []


# --------------------------------------------------------------------------- one decode


def test_an_upload_is_decoded_once_whole_route_included(client):
    data = audio_file(song(), SR, subtype="FLOAT")  # float samples: the range check reads them too
    with decoded_frames() as reads:
        response = upload(client, "song.wav", data)
    assert response.status_code == 200, response.text
    assert sum(reads) == int(3.0 * SR), f"frames decoded per read: {reads}"


# --------------------------------------------------------------------------- damaged files


def damaged(data: bytes, rng: np.random.Generator) -> bytes:
    """``data`` with flipped bits, overwritten bytes, a field set to 2**31 - 1, or cut short."""
    data = bytearray(data)
    kind = rng.integers(4)
    if kind == 0:
        for at in rng.integers(0, len(data), rng.integers(1, 20)):
            data[at] ^= 1 << int(rng.integers(8))
    elif kind == 1:
        at = int(rng.integers(0, min(len(data), 400)))
        data[at : at + 8] = rng.integers(0, 256, 8, dtype=np.uint8).tobytes()
    elif kind == 2:
        at = int(rng.integers(0, min(len(data), 200)))
        data[at : at + 4] = b"\xff\xff\xff\x7f"
    else:
        data = data[: int(rng.integers(0, len(data)))]
    return bytes(data)


@pytest.mark.parametrize("extension", ["wav", "aiff", "flac", "ogg", "mp3", "opus", "m4a", "aac"])
def test_damaged_files_of_every_format_get_an_analysis_or_a_4xx(client, tmp_path, extension):
    original = write_audio(tmp_path / f"song.{extension}", song(), SR).read_bytes()
    rng = np.random.default_rng(sum(map(ord, extension)))
    for index in range(6):
        data = damaged(original, rng)
        response = upload(client, f"damaged-{index}.{extension}", data)
        assert response.status_code in (200, 413, 415, 422), f"{extension} #{index}: {response.status_code} {response.text[:300]}"
