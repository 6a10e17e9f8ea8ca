"""A Subsonic test server: a synthetic bundle whose first tracks are real tagged audio files
(MP3, FLAC, Ogg Vorbis, m4a; two with an embedded cover), served on loopback with two users.

``ana`` logs in with a password (token or ``p``), ``bob`` with an API key. The bundle is the
synthetic one of ``bench/synthetic_bundle.py`` (no demo run needed); its catalog table gets
the files' titles, artists, albums and paths, as a folder run writes them.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
from audio_formats import write_audio
from serving_bundle import synthetic_bundle_module

from moodscape.config import SubsonicSettings

N_TRACKS = 40
PASSWORD = "sesame"
API_KEY = "bob-key-0123456789"
USERS = SubsonicSettings.model_validate({"users": [
    {"name": "ana", "password": PASSWORD},
    {"name": "bob", "api_key_sha256": hashlib.sha256(API_KEY.encode()).hexdigest()},
]})
FILES = [  # (extension, title, artist, album, cover image format or None)
    ("mp3", "Été indien", "Ana Ñandú", "Routes", "PNG"),
    ("flac", "Solo", "Ana Ñandú", "Routes", "JPEG"),
    ("ogg", "Minuit", "Bob", "Nuit", None),
    ("m4a", "Aube", "Bob", "Nuit", None),
]
"""The tagged audio files of the first catalog tracks, in catalog order."""
SR = 22050


def cover_image(fmt: str, colour=(200, 40, 40)) -> bytes:
    """A 64×64 image of one colour in ``fmt`` (``"PNG"`` or ``"JPEG"``)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), colour).save(out, format=fmt)
    return out.getvalue()


def write_subsonic_bundle(root: Path) -> Path:
    """The synthetic bundle of :data:`N_TRACKS` tracks, the first ones with the audio of :data:`FILES`."""
    root = synthetic_bundle_module().write_synthetic_bundle(root, N_TRACKS)
    table = pd.read_parquet(root / "catalog_tracks.parquet")
    table[["title", "artist", "album"]] = ""
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(3 * SR) / SR)
    for row, (extension, title, artist, album, cover) in enumerate(FILES):
        path = write_audio(root / "audio" / f"{table.track_id[row]}.{extension}", tone, SR)
        _tag(path, title, artist, album, cover)
        table.loc[row, ["title", "artist", "album", "audio_path"]] = [title, artist, album, str(path)]
    table.to_parquet(root / "catalog_tracks.parquet", index=False)
    return root


def _tag(path: Path, title: str, artist: str, album: str, cover: str | None) -> None:
    """Write the title, artist, album and cover the way each format keeps them."""
    from mutagen.flac import FLAC, Picture
    from mutagen.id3 import APIC, ID3, TALB, TIT2, TPE1
    from mutagen.mp4 import MP4, MP4Cover
    from mutagen.oggvorbis import OggVorbis

    image = cover_image(cover) if cover else None
    mime = f"image/{(cover or '').lower()}"
    if path.suffix == ".mp3":
        tags = ID3()
        tags.add(TIT2(encoding=3, text=title))
        tags.add(TPE1(encoding=3, text=artist))
        tags.add(TALB(encoding=3, text=album))
        if image:
            tags.add(APIC(encoding=3, mime=mime, type=3, desc="front", data=image))
        tags.save(path)
        return
    file = {".flac": FLAC, ".ogg": OggVorbis, ".m4a": MP4}[path.suffix](path)
    if path.suffix == ".m4a":
        file["©nam"], file["©ART"], file["©alb"] = [title], [artist], [album]
        if image:
            file["covr"] = [MP4Cover(image, imageformat=MP4Cover.FORMAT_PNG)]
    else:
        file["title"], file["artist"], file["album"] = [title], [artist], [album]
        if image and path.suffix == ".flac":
            picture = Picture()
            picture.type, picture.mime, picture.data = 3, mime, image
            file.add_picture(picture)
    file.save()
