"""Write ``responses.json``: the OpenSubsonic response schemas of the methods moodscape answers,
in one self-contained JSON Schema document (every ``$ref`` made local), for the tests.

Run by hand, never by a test (the tests read the committed ``responses.json``):

    git clone https://github.com/opensubsonic/open-subsonic-api SPEC
    python tests/api/opensubsonic/bundle_schemas.py SPEC

The schemas are the OpenSubsonic project's (Apache License 2.0, see LICENSE and NOTICE here).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path, PurePosixPath

METHODS = ["ping", "getLicense", "getOpenSubsonicExtensions", "getMusicFolders", "getIndexes", "getArtists", "getArtist",
           "getAlbum", "getSong", "getGenres", "getSongsByGenre", "getAlbumList2", "getRandomSongs", "search3",
           "getSimilarSongs", "getSimilarSongs2", "getSonicSimilarTracks", "findSonicPath", "getPlaylists", "getPlaylist",
           "createPlaylist", "updatePlaylist", "deletePlaylist"]
OUT = Path(__file__).with_name("responses.json")


def main(spec: Path) -> None:
    defs: dict[str, object] = {}
    methods = {}
    for method in METHODS:
        endpoint = PurePosixPath("openapi/endpoints") / f"{method}.json"
        response = json.loads(_read(spec, endpoint))["get"]["responses"]["200"]
        if "$ref" in response:  # a shared response object, e.g. the empty one of ping
            response_path = _join(endpoint, response["$ref"])
            response = json.loads(_read(spec, response_path))
            endpoint = response_path
        methods[method] = _add(spec, _join(endpoint, response["content"]["application/json"]["schema"]["$ref"]), defs)
    commit = subprocess.run(["git", "-C", str(spec), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    document = {"source": f"https://github.com/opensubsonic/open-subsonic-api/tree/{commit}/openapi",
                "license": "Apache-2.0", "methods": methods, "$defs": defs}
    OUT.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT}: {len(methods)} methods, {len(defs)} schemas")


def _read(spec: Path, path: PurePosixPath) -> str:
    file = spec / path
    if file.is_file():
        return file.read_text()
    return subprocess.run(["git", "-C", str(spec), "show", f"HEAD:{path}"], capture_output=True, text=True, check=True).stdout


def _join(base: PurePosixPath, ref: str) -> PurePosixPath:
    parts: list[str] = []
    for part in (base.parent / ref).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return PurePosixPath(*parts)


def _name(path: PurePosixPath) -> str:
    return ".".join(path.relative_to("openapi").with_suffix("").parts)


def _add(spec: Path, path: PurePosixPath, defs: dict) -> str:
    """Add the schema at ``path`` and every schema it refers to; returns its name in ``$defs``."""
    name = _name(path)
    if name not in defs:
        defs[name] = {}
        defs[name] = _localised(spec, path, json.loads(_read(spec, path)), defs)
    return name


def _localised(spec: Path, path: PurePosixPath, node, defs: dict):
    if isinstance(node, dict):
        return {key: (f"#/$defs/{_add(spec, _join(path, value), defs)}" if key == "$ref" else _localised(spec, path, value, defs))
                for key, value in node.items()}
    if isinstance(node, list):
        return [_localised(spec, path, item, defs) for item in node]
    return node


if __name__ == "__main__":
    main(Path(sys.argv[1]))
