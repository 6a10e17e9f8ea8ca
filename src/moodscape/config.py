"""Settings of a moodscape run: a TOML file validated by pydantic, with CLI overrides.

A config file has one table per concern; every key is optional except the location of
the data. Relative paths are resolved against the directory of the config file, so a
corpus and its ``moodscape.toml`` can be moved together.

Examples
--------
A minimal config for MTG-Jamendo::

    [data]
    source = "jamendo"

    [jamendo]
    root = "/data/mtg-jamendo-dataset/data"
    audio_root = "/data/mtg-jamendo/audio"

    [cluster]
    k = "auto"
    k_range = [5, 10]
"""

from __future__ import annotations

import difflib
import json
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator

from .errors import ConfigError


class _Section(BaseModel):
    # every number finite: an lr of Infinity or NaN trained a NaN model instead of stopping here
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_lax_booleans_or_empty_paths(cls, value: Any, info: ValidationInfo) -> Any:
        # pydantic's lax mode reads `lr = true` as 1.0 and `amp = "yes"` or `amp = 1` as true
        kinds = _plain_types(cls.model_fields[info.field_name].annotation)
        if kinds == {bool} and not isinstance(value, bool):
            raise ValueError("expected true or false (unquoted)")
        if bool not in kinds and kinds & {int, float} and _holds_bool(value):
            raise ValueError("expected a number, not true or false")
        if Path in kinds and isinstance(value, str) and not value.strip():
            raise ValueError("empty path; give a file or folder, or leave the setting out")
        return value


def _plain_types(annotation: Any) -> set[Any]:
    """The plain types a setting's annotation is made of: ``{int}`` for ``tuple[int, int]``, ``{str}`` for a Literal."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is Literal:
        return {type(arg) for arg in args}
    return set().union(*map(_plain_types, args)) if args else {annotation}


def _holds_bool(value: Any) -> bool:
    if isinstance(value, (list, tuple)):
        return any(map(_holds_bool, value))
    return isinstance(value, bool)


class DataSettings(_Section):
    """Which collection to read."""

    source: Literal["jamendo", "folder"] = "jamendo"


class JamendoSettings(_Section):
    """Where the MTG-Jamendo files are (``root`` holds the TSV, the tag list and splits/)."""

    root: Path | None = None
    audio_root: Path | None = None
    melspec_root: Path | None = None
    split: int = Field(0, ge=0, le=4)


FOLDER_EXTENSIONS = ("mp3", "ogg", "oga", "opus", "flac", "wav", "aif", "aiff", "m4a", "mp4", "aac")
"""File extensions a folder scan reads by default (``[folder] extensions``): every format
:func:`moodscape.audio.open_audio` decodes."""


EmbeddedTagField = Literal["genre", "mood", "style", "artist", "album"]
"""Embedded tag fields ``[folder] tags_from`` may turn into original tags."""


class FolderSettings(_Section):
    """Any folder of audio files, with an optional ``track_id,tags`` CSV.

    ``extensions`` are the file extensions read as audio (case-insensitive, without the
    dot); files of other audio formats are listed in ``reports/``. ``tags_from`` names the
    embedded tag fields that become original tags (``["genre", "mood"]``), merged with
    the CSV's (:mod:`moodscape.datasets.folder`).
    """

    root: Path | None = None
    tags_csv: Path | None = None
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)
    extensions: list[str] = Field(default_factory=lambda: list(FOLDER_EXTENSIONS), min_length=1)
    tags_from: list[EmbeddedTagField] = Field(default_factory=list)

    @field_validator("extensions")
    @classmethod
    def _bare_extensions(cls, value: list[str]) -> list[str]:
        extensions = [extension.strip().lower().lstrip(".") for extension in value]
        if not all(extensions):
            raise ValueError("extensions must be non-empty, such as 'mp3' or '.flac'")
        return list(dict.fromkeys(extensions))

    @field_validator("split_fractions")
    @classmethod
    def _fractions_sum_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(f < 0 for f in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError("split_fractions must be three non-negative numbers summing to 1")
        return value


class MusavSettings(_Section):
    """Where the MusAV annotations, previews and Spotify metadata are.

    ``planted_truth`` is the ``truth.json`` of a corpus written by ``moodscape demo-data``
    (its config sets it): the AV baselines then add the planted-archetype oracle.
    """

    root: Path | None = None
    audio_root: Path | None = None
    metadata_root: Path | None = None
    planted_truth: Path | None = None


class FeatureSettings(_Section):
    """Stage 1a: where features come from and how the per-track maps (features, mels,
    inference) run. ``track_timeout_s``: seconds a track may take on a Dask worker before
    it is skipped and listed (a stalled mount; a 4-minute track takes about a second)."""

    source: Literal["auto", "audio", "mel", "essentia"] = "auto"
    essentia_json_root: Path | None = None
    scheduler: str = "local"
    n_workers: int | None = Field(None, ge=1)
    chunk_size: int = Field(32, ge=1)
    track_timeout_s: float = Field(120.0, gt=0)

    @field_validator("scheduler")
    @classmethod
    def _known_scheduler(cls, value: str) -> str:
        if value in ("local", "synchronous") or "://" in value:
            return value
        raise ValueError("expected 'local', 'synchronous' or a Dask scheduler address like tcp://host:8786")


class ClusterSettings(_Section):
    """Stage 1b: K-Means on standardised features, K fixed or scanned.

    ``exclude_features`` are left out of the clustering (they stay in ``features.parquet``):
    by default the absolute level of the track (``rms_mean``, ``rms_std``, ``loudness_db``
    and the level term ``mfcc_mean_0``), which measures how loud a file was mastered, not
    how its music is made. ``target_k`` is the number of labels wanted: the K taken when
    the scan of ``k_range`` finds no cluster structure (clipped to the range).
    """

    k: int | Literal["auto"] = "auto"
    exclude_features: list[str] = Field(default_factory=lambda: ["rms_mean", "rms_std", "loudness_db", "mfcc_mean_0"])
    k_range: tuple[int, int] = (5, 10)
    target_k: int = Field(8, ge=2)
    algorithm: Literal["kmeans", "minibatch"] = "kmeans"
    n_init: int = Field(50, ge=1, le=1000)
    silhouette_sample: int = Field(5000, ge=100)

    @field_validator("k")
    @classmethod
    def _k_at_least_two(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 2:
            raise ValueError("k must be 'auto' or an integer >= 2")
        return value

    @field_validator("k_range")
    @classmethod
    def _range_ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 2 <= value[0] <= value[1]:
            raise ValueError("k_range must be [low, high] with 2 <= low <= high")
        return value


class LabelSettings(_Section):
    """Stage 2: naming clusters from their distinctive original tags, or from their sound.

    ``acoustic_names`` names a cluster without a distinctive tag after the words of its
    stage-1 features (at most ``max_words_in_name``) that lie ``min_feature_z`` standard
    deviations or more from the collection's mean; off, such a cluster is dropped.
    """

    min_size: int = Field(5, ge=1)
    min_lift: float = Field(1.2, ge=1.0)
    min_tag_count: int = Field(3, ge=1)
    max_tags_in_name: int = Field(2, ge=1, le=4)
    min_score: float = Field(3.0, ge=0)
    prior: float = Field(1.0, gt=0)
    manual_names: dict[int, str] = Field(default_factory=dict)
    acoustic_names: bool = True
    max_words_in_name: int = Field(3, ge=1, le=4)
    min_feature_z: float = Field(0.5, ge=0)


class CallOptions(_Section):
    """What a training call takes besides its section of settings (``moodscape.training`` configs add these)."""

    seed: int = 0
    progress: bool = True


class TrainingSettings(_Section):
    """Settings every training stage shares (see ``moodscape.training.loop.TrainingConfig``)."""

    epochs: int = Field(30, ge=1, le=10_000)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(1e-4, ge=0)
    patience: int = Field(5, ge=1)
    crop_frames: int = Field(256, ge=16)
    n_eval_crops: int = Field(4, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    amp: bool = True
    num_workers: int | None = Field(None, ge=0)


class ClassifierSettings(TrainingSettings):
    """What the classifier of the new labels is and how it trains (``moodscape.training.classify.ClassifierConfig``)."""

    mode: Literal["lora", "full", "probe"] = "lora"
    r: int = Field(8, ge=1)
    alpha: float = Field(16.0, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: str | list[str] | None = None
    class_weighting: bool = True


class TrainSettings(ClassifierSettings):
    """Stage 3b: the classifier of the new labels (LoRA adapters + head by default), on ``nproc`` processes."""

    nproc: int = Field(1, ge=1)


class ContrastiveSettings(_Section):
    """The self-supervised objective's own settings (``moodscape.training.contrastive.ContrastiveConfig``).

    ``temperature`` divides the cosine similarities of the NT-Xent loss; ``projection_dim``
    is the output size of the projection head, which trains with the backbone and is
    discarded after.
    """

    temperature: float = Field(0.1, gt=0, le=10)
    projection_dim: int = Field(128, ge=2, le=4096)


class PretrainSettings(TrainingSettings, ContrastiveSettings):
    """Stage 3a: pretraining of the backbone on the original tags, or self-supervised.

    ``objective``: ``tags`` (multi-label, one logit per tag), ``contrastive`` (two crops
    of one track are positives against the batch; no labels) or ``auto``: ``tags`` when
    enough tracks carry tags (``moodscape.training.pretrain.choose_objective``), else
    ``contrastive``. ``backbone`` names a checkpoint to adopt instead of pretraining (a
    state_dict or a checkpoint dict of a 1-channel ResNet-18, e.g. one pretrained on the
    full dataset).
    """

    objective: Literal["auto", "tags", "contrastive"] = "auto"
    backbone: Path | None = None


class AVModelSettings(_Section):
    """Stage 4: the valence/arousal regressor on MusAV embeddings (``moodscape.training.av.AVConfig``).

    ``mode``: ``mse`` on Spotify's absolute values, ``rank`` on the pairwise judgments
    (RankNet), or ``combined``. ``folds`` whole-triplet folds give every song a held-out
    prediction; the saved model averages the fold models.

    The default learns from the listeners' judgments (``rank``) with a small, strongly
    regularised MLP: Spotify-style values are a biased view of valence and arousal (energy
    follows the mastering level), and a regressor fitted to them learns the bias. On the
    demo (120 previews, level-invariant embeddings) held-out MusAV accuracy was 62 / 68 %
    (arousal / valence) with ``combined`` at ``rank_weight`` 0.1, 88 / 80 % with ``rank``,
    and 89 / 82 % with ``rank`` at hidden 32, dropout 0.3, weight decay 0.1.
    """

    mode: Literal["mse", "rank", "combined"] = "rank"
    hidden: int = Field(32, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)
    lr: float = Field(1e-3, gt=0, le=10)
    weight_decay: float = Field(0.1, ge=0)
    epochs: int = Field(400, ge=1, le=100_000)
    patience: int = Field(40, ge=1)
    batch_size: int = Field(64, ge=1)
    rank_weight: float = Field(0.1, ge=0)
    folds: int = Field(5, ge=3)


class AVSettings(AVModelSettings):
    """Stage 4, and the name its predictions carry in the MusAV evaluation (``model_name``)."""

    model_name: str = Field("moodscape", min_length=1)


class InferSettings(_Section):
    """Stage 5: which tracks the lookup (the serving catalog) covers and how the network runs.

    By default every track of the collection (``split``), with the tracks added earlier
    from other folders; ``track_list`` (a text file of track ids, one per line) restricts
    the collection's. ``folder`` (any folder of audio) adds its files to the catalog, or
    with ``replace`` makes them the whole catalog (:mod:`moodscape.pipeline.catalog_scope`).
    """

    split: Literal["train", "validation", "test", "all"] = "all"
    track_list: Path | None = None
    folder: Path | None = None
    replace: bool = False
    batch_size: int = Field(32, ge=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"


class AblationSettings(_Section):
    """``moodscape ablate``: the variants compared on the same splits and budget.

    Every trained variant runs ``epochs`` epochs at most (early stopping on validation
    macro-F1 with ``[train] patience``), the rest of its settings from ``[train]``. The
    run's own classifier (``models/classifier.pt``) stands for the LoRA rank it was trained
    with when ``reuse_run_classifier`` is on and that rank is in ``ranks``, instead of
    being trained again (its row says so and how many epochs it ran). ``transfer`` scores
    every variant, and the stage-1 features, by the same valence/arousal regressor on the
    MusAV previews (when ``[musav]`` is set).
    """

    ranks: list[int] = Field(default_factory=lambda: [1, 8, 32])
    include: list[Literal["lora", "full", "probe", "tags"]] = Field(default_factory=lambda: ["lora", "full", "probe", "tags"])
    epochs: int = Field(10, ge=1, le=10_000)
    reuse_run_classifier: bool = True
    transfer: bool = True

    @field_validator("ranks")
    @classmethod
    def _positive_ranks(cls, value: list[int]) -> list[int]:
        if any(r < 1 for r in value):
            raise ValueError("ranks must be positive integers")
        return list(dict.fromkeys(value))


class SubsonicUser(_Section):
    """One account of the OpenSubsonic API (``/rest``) that ``moodscape serve`` answers.

    ``password`` is kept as given: the token login most players use (``t`` = md5(password
    + salt)) needs the plain secret on the server. ``api_key_sha256`` is the SHA-256 (hex)
    of an API key, so the key itself is never stored.
    """

    name: str = Field(min_length=1, max_length=200)
    password: SecretStr | None = None
    api_key_sha256: str | None = Field(None, pattern=r"^[0-9a-fA-F]{64}$")

    @model_validator(mode="after")
    def _has_a_secret(self) -> SubsonicUser:
        if (self.password is None or not self.password.get_secret_value()) and self.api_key_sha256 is None:
            raise ValueError(f"user {self.name!r} needs a password or an api_key_sha256")
        return self


class SubsonicSettings(_Section):
    """Who may use the OpenSubsonic API of ``moodscape serve`` (``[[subsonic.users]]``); nobody when empty."""

    users: list[SubsonicUser] = Field(default_factory=list)

    @field_validator("users")
    @classmethod
    def _unique(cls, users: list[SubsonicUser]) -> list[SubsonicUser]:
        names = [user.name for user in users]
        keys = [user.api_key_sha256.lower() for user in users if user.api_key_sha256]
        if len(set(names)) < len(names) or len(set(keys)) < len(keys):
            raise ValueError("user names and API keys must be unique")
        return users

    @classmethod
    def load(cls, path: Path | str) -> SubsonicSettings:
        """The ``[subsonic]`` table of a config file alone (the rest of the file is not checked).

        Raises
        ------
        ConfigError
            When the file cannot be read or the table is invalid, naming the file and the key.
        """
        path = Path(path)
        try:
            return _SubsonicTable.model_validate({"subsonic": _read_config_file(path).get("subsonic", {})}).subsonic
        except ValidationError as exc:
            raise ConfigError(_describe(exc, path, {})) from None


class _SubsonicTable(BaseModel):
    """A config file's ``[subsonic]`` table, validated where :class:`Settings` has it (the same error locations)."""

    subsonic: SubsonicSettings


class Settings(_Section):
    """Every setting of a run; ``Settings.load(path)`` reads a TOML file."""

    seed: int = Field(0, ge=0, lt=2**32)  # numpy and scikit-learn take seeds in [0, 2**32)
    data: DataSettings = Field(default_factory=DataSettings)
    jamendo: JamendoSettings = Field(default_factory=JamendoSettings)
    folder: FolderSettings = Field(default_factory=FolderSettings)
    musav: MusavSettings = Field(default_factory=MusavSettings)
    features: FeatureSettings = Field(default_factory=FeatureSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    label: LabelSettings = Field(default_factory=LabelSettings)
    pretrain: PretrainSettings = Field(default_factory=PretrainSettings)
    train: TrainSettings = Field(default_factory=TrainSettings)
    av: AVSettings = Field(default_factory=AVSettings)
    infer: InferSettings = Field(default_factory=InferSettings)
    ablate: AblationSettings = Field(default_factory=AblationSettings)
    # Accounts, not run settings: left out of dumps (the manifest, the report) and of staleness.
    subsonic: SubsonicSettings = Field(default_factory=SubsonicSettings, exclude=True)

    @model_validator(mode="after")
    def _source_has_root(self) -> Settings:
        section = self.jamendo if self.data.source == "jamendo" else self.folder
        if section.root is None:
            raise ValueError(f"[{self.data.source}] root is required when data.source = '{self.data.source}'")
        return self

    @classmethod
    def load(cls, path: Path | str | None, overrides: dict[str, Any] | None = None) -> Settings:
        """Read a TOML config (or JSON, by its ``.json`` suffix), apply dotted-key overrides, resolve paths and validate.

        Parameters
        ----------
        path : Path or str or None
            The TOML file. ``None`` starts from defaults (then ``overrides`` must say
            where the data are).
        overrides : dict, optional
            ``{"cluster.k": 6, ...}``: values from the command line, applied on top.

        Returns
        -------
        Settings

        Raises
        ------
        ConfigError
            When the file is missing, unreadable, not UTF-8 or not TOML, an override
            sets a key under a plain value, or a value fails validation; the message
            names the file or the setting, and where a bad value came from.
        """
        raw: dict[str, Any] = {}
        base = Path.cwd()
        if path is not None:
            path = Path(path)
            raw = _read_config_file(path)
            base = path.resolve().parent
        given = {dotted: value for dotted, value in (overrides or {}).items() if value is not None}
        for dotted, value in given.items():
            _set_dotted(raw, dotted, value)
        try:
            settings = cls.model_validate(raw)
        except ValidationError as exc:
            raise ConfigError(_describe(exc, path, given)) from None
        return settings._resolved(base)

    def _resolved(self, base: Path) -> Settings:
        data = self.model_dump()
        for section in ("jamendo", "folder", "musav", "features", "pretrain", "infer"):
            for key, value in data[section].items():
                if isinstance(value, Path) and not value.is_absolute():
                    data[section][key] = (base / value).resolve()
        return type(self).model_validate({**data, "subsonic": self.subsonic})

    def check_paths(self) -> None:
        """Check that every configured file and folder exists, so a wrong path stops a run before its first stage.

        The section of the collection not read (``[folder]`` when ``data.source`` is
        ``"jamendo"``, and the reverse) is not checked.

        Raises
        ------
        ConfigError
            One line naming each setting whose path is missing or of the wrong kind.
        """
        unread = "folder" if self.data.source == "jamendo" else "jamendo"
        problems = []
        for section in ("jamendo", "folder", "musav", "features", "pretrain", "infer"):
            for key, path in getattr(self, section) if section != unread else ():
                name = f"{section}.{key}"
                if not isinstance(path, Path) or (path.is_file() if name in _FILE_SETTINGS else path.is_dir()):
                    continue
                kind = "file" if name in _FILE_SETTINGS else "folder"
                problems.append(f"{name} = {path}: {'no such' if not path.exists() else 'not a'} {kind}")
        if problems:
            raise ConfigError(f"{'; '.join(problems)}; set each to an existing file or folder, or leave it out "
                              "(a relative path is relative to the config file's folder)")

    def stage_settings(self, *sections: str) -> dict[str, Any]:
        """JSON-ready settings of the given sections, as recorded in the manifest."""
        dumped = self.model_dump(mode="json")
        return {name: dumped[name] for name in sections}


_FILE_SETTINGS = frozenset({"folder.tags_csv", "musav.planted_truth", "pretrain.backbone", "infer.track_list"})
"""The path settings that name a file; every other path setting names a folder."""


def _read_config_file(path: Path) -> dict[str, Any]:
    """The settings of a TOML (or ``.json``) config file, as a dict.

    Raises
    ------
    ConfigError
        Naming the file and what is wrong with it.
    """
    kind = "JSON" if path.suffix == ".json" else "TOML"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path} is a directory; --config takes a {kind} file, e.g. {path / 'moodscape.toml'}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start}); "
                          "save the file as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        raw = json.loads(text) if kind == "JSON" else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {kind}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a table of settings, got a {type(raw).__name__}")
    return raw


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``raw[a][b][c] = value`` for ``dotted`` = ``"a.b.c"``, creating missing tables.

    Raises
    ------
    ConfigError
        When a key is empty, or a parent of the leaf holds a plain value, not a table.
    """
    *parents, leaf = keys = dotted.split(".")
    if not all(key.strip() for key in keys):
        raise ConfigError(f"setting {dotted!r}: every part of a dotted key must be a name, e.g. cluster.k")
    node = raw
    for depth, key in enumerate(parents):
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            parent = ".".join(parents[: depth + 1])
            raise ConfigError(f"cannot set {dotted}: {parent} is {node!r}, not a table of settings; "
                              f"set {parent} itself, or check the spelling of the key")
    node[leaf] = value


def _describe(exc: ValidationError, path: Path | None, overrides: dict[str, Any]) -> str:
    """One line listing every problem, each with its setting, its value and where the value came from."""
    return "; ".join(_problem(error, path, overrides) for error in exc.errors())


def _problem(error: Any, path: Path | None, overrides: dict[str, Any]) -> str:
    location = ".".join(str(part) for part in error["loc"]) or "config"
    value = error.get("input")
    secret = location.startswith("subsonic.")  # passwords: never echoed
    shown = f" = {value!r}" if isinstance(value, (str, int, float, bool)) and not secret else ""
    message = _message(error, location)
    if _overridden(location, overrides):
        return f"{location}{shown} (given on the command line): {message}"
    where = f"{path}: " if path else ""
    return f"{where}{location}{shown}: {message}"


def _message(error: Any, location: str) -> str:
    """What is wrong with a setting, in words that say what to write instead."""
    if error["type"] == "extra_forbidden":
        return _unknown_key(error["loc"])
    if error["type"] == "model_type":
        return f"expected a table of settings ([{location}] in a file, --set {location}.<key>=... on the command line)"
    return error["msg"].removeprefix("Value error, ")


def _unknown_key(loc: tuple[Any, ...]) -> str:
    """What to say of a key no setting has: the nearest valid key, or the valid keys of its table."""
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        if isinstance(part, int):  # an item of a list of tables ([[subsonic.users]])
            continue
        model = model.model_fields[str(part)].annotation
        model = next((arg for arg in typing.get_args(model) if isinstance(arg, type) and issubclass(arg, BaseModel)), model)
    names = list(model.model_fields)
    prefix = "".join(f"{part}." for part in loc[:-1])
    nearest = difflib.get_close_matches(str(loc[-1]).lower(), names, n=1, cutoff=0.6)
    if nearest:
        return f"unknown setting; did you mean {prefix}{nearest[0]}?"
    table = f"[{prefix.rstrip('.')}]" if prefix else "the top level"
    return f"unknown setting; {table} takes {', '.join(names)}"


def _overridden(location: str, overrides: dict[str, Any]) -> bool:
    """Whether the setting at ``location`` (dotted) was set, itself, within or below, by an override."""
    return any(location == key or location.startswith(f"{key}.") or key.startswith(f"{location}.") for key in overrides)
