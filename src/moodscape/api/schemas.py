"""Request and response models of the JSON API; their field descriptions are the OpenAPI docs.

Families per resource, as in the FastAPI template: ``TrackPublic`` / ``TracksPublic``,
``LabelPublic`` / ``LabelsPublic``, the recommendation queries and their results.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

VALENCE_DOC = (
    "Valence: musical positiveness on a 0–1 scale (0 sad, depressed, angry; 1 happy, cheerful, "
    "euphoric), the scale of Spotify's `valence`, predicted by the stage-4 regressor trained on MusAV."
)
AROUSAL_DOC = (
    "Arousal: energy and intensity on a 0–1 scale (0 calm, quiet; 1 fast, loud, noisy), the scale of "
    "Spotify's `energy`, predicted by the stage-4 regressor (may fall slightly outside 0–1)."
)
PROBABILITY_DOC = "Softmax probability (0–1) the classifier gives the label; the probabilities of one track sum to 1."

TrackId = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]
Limit = Annotated[int, Field(ge=1, le=100, description="Number of tracks to return (at most 100).")]
Exclude = Annotated[list[TrackId], Field(default_factory=list, max_length=1000, description="Track ids never to return.")]
Diversity = Annotated[float, Field(0.0, ge=0.0, le=1.0, description=(
    "0 returns the plain ranking; up to 1, results are re-ranked by maximal marginal relevance so they "
    "are not near-duplicates of each other (the weight of dissimilarity to the tracks already chosen)."))]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"
    tracks: int = Field(description="Tracks in the catalog.")
    labels: int = Field(description="New acoustic labels.")
    valence_arousal: bool = Field(description="Whether the bundle has valence/arousal predictions.")


# --------------------------------------------------------------------------- tracks


class TrackPublic(BaseModel):
    track_id: str
    title: str | None = Field(description="Title from the file's embedded tags, null when unknown.")
    artist: str | None = Field(description="Artist from the file's embedded tags, null when unknown.")
    album: str | None = Field(description="Album from the file's embedded tags, null when unknown.")
    label: str = Field(description="Canonical name of the predicted new acoustic label (as in label_to_idx.json).")
    label_name: str = Field(description="Display name of the label (renamed in the app, else the canonical name).")
    probability: float = Field(description=PROBABILITY_DOC)
    probabilities: dict[str, float] = Field(description="Probability of every label, by canonical name. " + PROBABILITY_DOC)
    valence: float | None = Field(description=VALENCE_DOC + " Null without an AV model.")
    arousal: float | None = Field(description=AROUSAL_DOC + " Null without an AV model.")
    tags: list[str] = Field(description="The track's original dataset tags (e.g. MTG-Jamendo mood/theme).")
    duration: float = Field(description="Seconds of audio.")
    audio_url: str | None = Field(description="Where the audio streams from (HTTP ranges), null when the bundle has no file.")


class TracksPublic(BaseModel):
    total: int = Field(description="Tracks matching the filters.")
    offset: int
    limit: int
    items: list[TrackPublic]


class LookupRequest(_Model):
    track_ids: list[TrackId] = Field(min_length=1, max_length=1000, description="Up to 1,000 track ids.")


class LookupPublic(BaseModel):
    items: list[TrackPublic] = Field(description="The known tracks, in request order.")
    missing: list[str] = Field(description="Requested ids that are not in the catalog.")


SortKey = Literal["track_id", "title", "artist", "label", "probability", "valence", "arousal", "duration"]


# --------------------------------------------------------------------------- labels


class TagLift(BaseModel):
    tag: str
    count: int = Field(description="Training tracks of the cluster with the tag.")
    share: float = Field(description="Fraction of the cluster's tracks with the tag.")
    lift: float = Field(description="share / the tag's share among all clustered tracks (>1: over-represented).")
    score: float = Field(description="Smoothed log-odds z-score the naming ranks tags by.")
    distinctive: bool = Field(description="Whether the tag passed the naming thresholds (it names the cluster).")


class FeatureZ(BaseModel):
    feature: str = Field(description="Stage-1 feature.")
    z: float = Field(description="The cluster's mean of the standardised feature: standard deviations from the collection's mean.")
    word: str | None = Field(description="The feature's word for this side of the mean (`Fast`, `Bright`, …); null when it has none.")
    in_name: bool = Field(description="Whether its word is in the label's acoustic name.")


class LabelPublic(BaseModel):
    label: str = Field(description="Canonical name, as in label_to_idx.json.")
    label_name: str = Field(description="Display name.")
    index: int = Field(description="Output index of the classifier.")
    cluster_id: int = Field(description="The stage-1 cluster the label names.")
    size: int = Field(description="Catalog tracks predicted as this label.")
    cluster_size: int = Field(description="Training tracks of the cluster (stage 1).")
    named_by: str = Field(description="How the name was chosen: `tags` (distinctive tags), `acoustic` (the features "
                                      "that set the cluster apart) or `manual`.")
    distinctive_tags: list[str]
    top_tags: list[TagLift]
    acoustic_features: list[FeatureZ] = Field(description="The features farthest from the collection's mean, farthest first.")
    mean_valence: float | None = Field(description="Mean predicted valence of the label's catalog tracks.")
    mean_arousal: float | None = Field(description="Mean predicted arousal of the label's catalog tracks.")


class LabelsPublic(BaseModel):
    items: list[LabelPublic]


class LabelRename(_Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)] = Field(
        description="New display name (1–60 characters, unique among labels).")


# --------------------------------------------------------------------------- recommendations


class RecommendationPublic(TrackPublic):
    score: float = Field(description="Relevance, higher is better (cosine similarity or mood closeness).")
    distance: float | None = Field(None, description="Distance in the valence/arousal plane to the target, when there is one.")


class RecommendationsPublic(BaseModel):
    items: list[RecommendationPublic]


class _Filters(_Model):
    min_valence: Score | None = Field(None, description="Only tracks with valence ≥ this. " + VALENCE_DOC)
    max_valence: Score | None = Field(None, description="Only tracks with valence ≤ this.")
    min_arousal: Score | None = Field(None, description="Only tracks with arousal ≥ this. " + AROUSAL_DOC)
    max_arousal: Score | None = Field(None, description="Only tracks with arousal ≤ this.")
    min_probability: Score | None = Field(None, description="Only tracks whose predicted label has at least this probability.")
    labels: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(
        None, max_length=100, description="Only tracks predicted as one of these labels (canonical names).")
    limit: Limit = 10
    exclude: Exclude
    diversity: Diversity

    @model_validator(mode="after")
    def _ranges_ordered(self):
        for name in ("valence", "arousal"):
            low, high = getattr(self, f"min_{name}"), getattr(self, f"max_{name}")
            if low is not None and high is not None and low > high:
                raise ValueError(f"min_{name} ({low}) is greater than max_{name} ({high})")
        return self


class MoodQuery(_Filters):
    """Tracks near a target mood, the query style of Spotify's former recommendations endpoint."""

    target_valence: Score | None = Field(None, description="Target valence. " + VALENCE_DOC)
    target_arousal: Score | None = Field(None, description="Target arousal. " + AROUSAL_DOC)
    tolerance: float = Field(0.15, gt=0.0, le=1.5, description="Largest distance from the target in the valence/arousal plane.")


class SeedQuery(_Filters):
    """Tracks like the seeds (embedding cosine), optionally less like the negative seeds."""

    seeds: list[TrackId] = Field(min_length=1, max_length=50, description="Track ids to find similar tracks to.")
    negative_seeds: list[TrackId] = Field(default_factory=list, max_length=50,
                                          description="Track ids to move away from: 'like these, less like that'.")
    va_weight: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Blend of embedding similarity (0) and closeness to the seeds' mean valence/arousal (1)."))


class LabelQuery(_Model):
    label: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(description="Canonical label name.")
    limit: Limit = 10
    exclude: Exclude
    diversity: Diversity


# --------------------------------------------------------------------------- mood path


class MoodPoint(_Model):
    """A point of the valence/arousal plane, or a track whose predicted mood is the point."""

    valence: Score | None = None
    arousal: Score | None = None
    track_id: TrackId | None = None

    @model_validator(mode="after")
    def _one_kind(self):
        has_point = self.valence is not None and self.arousal is not None
        if has_point == (self.track_id is not None) or (not has_point and (self.valence is not None or self.arousal is not None)):
            raise ValueError("give either both valence and arousal, or a track_id")
        return self


class PathRequest(_Model):
    start: MoodPoint
    end: MoodPoint
    steps: int = Field(10, ge=2, le=100, description="Tracks in the path.")
    labels: list[Annotated[str, StringConstraints(min_length=1, max_length=200)]] | None = Field(None, max_length=100)
    exclude: Exclude


class Target(BaseModel):
    valence: float
    arousal: float


class PathItem(RecommendationPublic):
    target: Target = Field(description="The waypoint of the straight line this track stands for.")


class PathPublic(BaseModel):
    start: Target
    end: Target
    items: list[PathItem]


# --------------------------------------------------------------------------- analysis


class Segment(BaseModel):
    start: float = Field(description="Seconds.")
    end: float = Field(description="Seconds.")
    label: str
    label_name: str
    probability: float
    valence: float | None
    arousal: float | None


class AnalysisPublic(BaseModel):
    filename: str
    duration: float
    label: str
    label_name: str
    probability: float = Field(description=PROBABILITY_DOC)
    probabilities: dict[str, float]
    valence: float | None = Field(description=VALENCE_DOC)
    arousal: float | None = Field(description=AROUSAL_DOC)
    features: dict[str, float] = Field(description="The stage-1 acoustic features of the file.")
    timeline: list[Segment] = Field(description="The prediction over consecutive segments of the file.")
    nearest: list[RecommendationPublic] = Field(description="Catalog tracks with the most similar embeddings.")


# --------------------------------------------------------------------------- maps and model


class MapPublic(BaseModel):
    """Columns of the plotted points (a seeded sample of at most 20,000 tracks)."""

    method: str
    total: int = Field(description="Tracks in the catalog (the points may be a sample).")
    track_id: list[str]
    x: list[float]
    y: list[float]
    label: list[str]
    label_name: list[str]
    tags: list[str] = Field(description="Comma-joined original tags of each point.")


class PlaylistRequest(_Model):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] = "moodscape playlist"
    track_ids: list[TrackId] = Field(min_length=1, max_length=5000)


class MpdPushRequest(_Model):
    track_ids: list[TrackId] = Field(min_length=1, max_length=5000, description="Catalog tracks, in queue order.")
    music_directory: Annotated[str, StringConstraints(min_length=1, max_length=4096, pattern=r"^[/~][^\x00]*$")] = Field(
        description="MPD's music_directory (mpd.conf), absolute or under ~; every track's file must lie under it.")
    host: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.:\-\[\]]{1,253}$")] = "127.0.0.1"
    port: int = Field(6600, ge=1, le=65535)
    clear: bool = Field(False, description="Replace MPD's queue (else append to it).")
    play: bool = Field(False, description="Start playing the first pushed track.")


class MpdPushResult(BaseModel):
    queued: int
    queue_length: int
    playing: bool
