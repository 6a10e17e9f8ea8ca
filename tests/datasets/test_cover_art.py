"""Issue 16, cover art for Subsonic players: the picture embedded in MP3 (ID3 APIC), FLAC
(picture block), Ogg Vorbis (METADATA_BLOCK_PICTURE), m4a (covr) and APEv2 tags is read back,
the front cover first; a file without one gives None, a damaged one a DataError."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from audio_formats import write_audio

from api.subsonic_server import cover_image
from moodscape.datasets.embedded_tags import read_cover_art
from moodscape.errors import DataError

SR = 22050
TONE = (0.3 * np.sin(2 * np.pi * 330 * np.arange(SR) / SR)).astype(np.float32)


def _picture(data: bytes, mime: str, kind: int):
    from mutagen.flac import Picture

    picture = Picture()
    picture.type, picture.mime, picture.data = kind, mime, data
    return picture


def embed(path, data: bytes, mime: str, kind: int = 3) -> None:
    """Embed one picture of ID3/FLAC picture ``kind`` (3: front cover) the way each format keeps it."""
    import mutagen
    from mutagen.id3 import APIC, ID3
    from mutagen.mp4 import MP4Cover

    if path.suffix == ".mp3":
        tags = ID3()
        tags.add(APIC(encoding=3, mime=mime, type=kind, desc=f"picture {kind}", data=data))
        tags.save(path)
        return
    file = mutagen.File(path)
    if path.suffix == ".flac":
        file.add_picture(_picture(data, mime, kind))
    elif path.suffix == ".ogg":
        file["metadata_block_picture"] = [base64.b64encode(_picture(data, mime, kind).write()).decode("ascii")]
    elif path.suffix == ".m4a":
        file["covr"] = [MP4Cover(data, imageformat=MP4Cover.FORMAT_JPEG if mime == "image/jpeg" else MP4Cover.FORMAT_PNG)]
    file.save()


@pytest.mark.parametrize("extension", ["mp3", "flac", "ogg", "m4a"])
@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_the_embedded_picture_is_read_with_its_type(tmp_path, extension, fmt):
    path = write_audio(tmp_path / f"song.{extension}", TONE, SR)
    image = cover_image(fmt)
    embed(path, image, f"image/{fmt.lower()}")
    assert read_cover_art(path) == (image, f"image/{fmt.lower()}")


def test_the_front_cover_comes_before_other_pictures(tmp_path):
    from mutagen.flac import FLAC

    path = write_audio(tmp_path / "song.flac", TONE, SR)
    back, front = cover_image("PNG", (0, 0, 255)), cover_image("PNG", (255, 0, 0))
    file = FLAC(path)
    file.add_picture(_picture(back, "image/png", 4))
    file.add_picture(_picture(front, "image/png", 3))
    file.save()
    assert read_cover_art(path)[0] == front


def test_an_apev2_front_cover_is_read(tmp_path):
    from mutagen.apev2 import APEv2, APEValue, BINARY

    path = tmp_path / "song.ape"  # any file whose only tags are APEv2 (Monkey's Audio, WavPack, Musepack)
    path.write_bytes(bytes(4096))
    tags = APEv2()
    tags["Cover Art (Front)"] = APEValue(b"cover.png\x00" + cover_image("PNG"), BINARY)
    tags.save(path)
    assert read_cover_art(path) == (cover_image("PNG"), "image/png")


def test_no_picture_is_none_and_a_damaged_file_a_data_error(tmp_path):
    assert read_cover_art(write_audio(tmp_path / "plain.ogg", TONE, SR)) is None
    damaged = tmp_path / "damaged.flac"
    damaged.write_bytes(b"fLaC" + b"\xff" * 64)
    with pytest.raises(DataError, match="damaged.flac"):
        read_cover_art(damaged)
