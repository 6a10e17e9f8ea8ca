"""Synthesised music with planted acoustic archetypes, for the demo corpus.

A track is drums (kick, snare, hi-hat from shaped noise and pitch sweeps), a bass line, a
chord pad and a melody, each voice a band-limited wavetable oscillator under note
envelopes. An :class:`Archetype` fixes the centre of six musical controls (tempo,
brightness, percussiveness, mode, note density, loudness) and its timbre (waveform,
formant, drive, noise); :func:`draw_track_params` scatters one track around that centre,
in a random key, along two latent controls ("energy": tempo, loudness, density, drums;
"mood": brightness), and :func:`render_track` turns the parameters into audio. The true
valence and arousal of a track are functions of its audible parameters
(:func:`valence_arousal`), so they vary within an archetype and can be learned from the
audio, while the timbre keeps the archetypes apart. Minor-mode tracks use minor-key
harmony (tonic triad on every other bar, the dominant with its leading tone, the minor
third voiced loudest) so that key-profile mode estimation hears them as minor.
"""

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, sosfilt

_TABLE_SIZE = 4096
_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)
# chord roots as scale degrees (0-based), one chord per bar
# major: I, IV, V and ii only (vi would sound like the relative minor)
_MAJOR_PROGRESSIONS = ((0, 3, 4, 0), (0, 4, 0, 3), (0, 3, 0, 4), (0, 1, 4, 0))
# minor: the tonic triad on every other bar, the dominant with the raised (leading) seventh
# of harmonic minor, no VII or III, which would sound like the relative major
_MINOR_PROGRESSIONS = ((0, 3, 0, 4), (0, 5, 0, 4), (0, 3, 4, 0), (0, 0, 3, 4))
_FADE_SECONDS = 0.3
# root, third and fifth of the pad's triads; in minor the (minor) third stands out
_PAD_LEVELS = {True: (1.2, 0.9, 1.0), False: (1.0, 1.4, 0.8)}
# per-track spread of the parameters driven by the latent "energy" (tempo: log scale,
# note density: log scale) and "mood" (brightness), per standard deviation of the latent
_SPREAD = {"tempo": 0.11, "loudness_db": 3.0, "note_density": 0.35, "percussiveness": 0.08, "brightness": 0.13}
_UNDRUMMED_SCALE = 1.4
_LOUDEST_DB = -7.0


@dataclass(frozen=True)
class Archetype:
    """The centre of one family of synthesised tracks.

    Parameters
    ----------
    name : str
        Short descriptive name.
    tempo_bpm : float
        Beats per minute.
    brightness : float
        0 (dull: steep harmonic roll-off, low cut-off) to 1 (bright).
    percussiveness : float
        0 (no drums) to 1 (loud drums, four-on-the-floor kick, sixteenth hi-hats).
    major_probability : float
        Probability that a track of this archetype is in a major key.
    note_density : float
        Melody notes per beat.
    loudness_db : float
        RMS level of the mix in dBFS.
    waveform : str
        ``"saw"`` (all harmonics), ``"square"`` (odd harmonics) or ``"soft"`` (few harmonics).
    formant_hz : float
        Centre of the resonance that colours the pitched instruments (their "body").
    drive : float
        Gain into the soft clipper of the pitched instruments; 1 is clean.
    air : float
        Level of a slowly swelling band of noise (wind, surf) under the music; 0 is none.
    signature_tags : tuple of str
        Mood/theme tags that uploaders give this kind of music more often than others.
    """

    name: str
    tempo_bpm: float
    brightness: float
    percussiveness: float
    major_probability: float
    note_density: float
    loudness_db: float
    waveform: str
    formant_hz: float
    drive: float
    air: float
    signature_tags: tuple[str, ...]


ARCHETYPES = (
    Archetype("upbeat pop", 124, 0.80, 0.70, 0.92, 2.0, -13, "saw", 2000, 1.0, 0.0,
              ("energetic", "party", "upbeat", "fun")),
    Archetype("heavy action", 160, 0.45, 0.95, 0.08, 3.0, -10, "saw", 700, 4.0, 0.0,
              ("action", "heavy", "powerful", "sport")),
    Archetype("sad ballad", 68, 0.18, 0.00, 0.08, 0.75, -26, "soft", 450, 1.0, 0.0,
              ("sad", "melancholic", "emotional")),
    Archetype("relaxing", 88, 0.45, 0.35, 0.92, 1.0, -20, "soft", 3000, 1.0, 0.0,
              ("relaxing", "calm", "soft", "romantic")),
    Archetype("dark groove", 100, 0.12, 0.60, 0.08, 1.0, -15, "saw", 250, 2.0, 0.0,
              ("dark", "deep", "cool")),
    Archetype("epic", 140, 0.85, 0.40, 0.08, 4.0, -11, "saw", 1200, 1.5, 0.0,
              ("epic", "dramatic", "trailer", "adventure")),
    Archetype("meditative", 60, 0.30, 0.00, 0.60, 0.25, -30, "soft", 900, 1.0, 0.6,
              ("meditative", "space", "soundscape", "dream")),
    Archetype("retro game", 112, 0.85, 0.80, 0.92, 2.0, -16, "square", 4000, 1.0, 0.0,
              ("retro", "game", "funny", "groovy")),
)
"""All archetypes; a corpus with ``n`` archetypes uses the first ``n``."""


@dataclass(frozen=True)
class TrackParams:
    """The musical controls of one synthesised track (see :class:`Archetype`).

    ``key`` is the tonic pitch class (0 = C), ``major`` the mode, ``progression`` the chord
    roots as scale degrees, and ``seed`` seeds the notes, drum noise and humanisation.
    """

    archetype: int
    tempo_bpm: float
    brightness: float
    percussiveness: float
    major: bool
    note_density: float
    loudness_db: float
    waveform: str
    formant_hz: float
    drive: float
    air: float
    key: int
    progression: tuple[int, ...]
    seed: int


def draw_track_params(archetype_index: int, rng: np.random.Generator, major: bool | None = None) -> TrackParams:
    """Draw the parameters of one track around the centre of its archetype.

    Two latent per-track controls move several parameters together, as a calmer or more
    driven, a darker or brighter rendition of the same kind of music would: ``energy``
    shifts tempo, loudness, note density and (where the archetype has drums) the drum
    level; ``mood`` shifts brightness. Each parameter also gets a little noise of its
    own. The spread is wide enough that valence and arousal vary within an archetype
    (so pairs of tracks of one archetype can be ranked by ear), and narrow enough that
    the archetypes stay apart in feature space.

    Parameters
    ----------
    archetype_index : int
        Index into :data:`ARCHETYPES`.
    rng : numpy.random.Generator
        Source of the per-track variation.
    major : bool, optional
        Force the mode; by default it is major with the archetype's ``major_probability``.

    Returns
    -------
    TrackParams
        Parameters in a random key, with tempo, brightness, percussiveness, density and
        loudness scattered around the archetype's values.
    """
    centre = ARCHETYPES[archetype_index]
    drawn_major = bool(rng.random() < centre.major_probability)
    major = drawn_major if major is None else bool(major)
    progressions = _MAJOR_PROGRESSIONS if major else _MINOR_PROGRESSIONS
    energy, mood = np.clip(rng.normal(size=2), -2, 2)
    drummed = centre.percussiveness > 0
    # without drums to vary, tempo, level and density vary more
    spread = _SPREAD if drummed else {**_SPREAD, **{k: _UNDRUMMED_SCALE * _SPREAD[k]
                                                    for k in ("tempo", "loudness_db", "note_density")}}
    return TrackParams(
        archetype=archetype_index,
        tempo_bpm=round(float(centre.tempo_bpm * np.exp(spread["tempo"] * energy + rng.normal(0, 0.02))), 2),
        brightness=float(np.clip(centre.brightness + spread["brightness"] * mood + rng.normal(0, 0.02), 0, 1)),
        percussiveness=float(np.clip(centre.percussiveness + drummed * (spread["percussiveness"] * energy
                                                                        + rng.normal(0, 0.02)), 0, 1)),
        major=major,
        note_density=float(centre.note_density * np.exp(spread["note_density"] * energy + rng.normal(0, 0.05))),
        loudness_db=float(min(_LOUDEST_DB, centre.loudness_db + spread["loudness_db"] * energy + rng.normal(0, 0.5))),
        waveform=centre.waveform,
        formant_hz=float(centre.formant_hz * np.exp(rng.normal(0, 0.04))),
        drive=centre.drive,
        air=centre.air,
        key=int(rng.integers(12)),
        progression=progressions[rng.integers(len(progressions))],
        seed=int(rng.integers(2**32)),
    )


def valence_arousal(params: TrackParams) -> tuple[float, float]:
    """The true valence and arousal of a track, from its musical parameters.

    Arousal rises with tempo, loudness, percussiveness and note density; valence with the
    major mode, brightness and (a little) tempo. Every term is something a listener (or
    a model) hears in the rendered audio.

    Parameters
    ----------
    params : TrackParams
        Parameters of the rendered track.

    Returns
    -------
    valence, arousal : float
        Both in [0, 1].
    """
    tempo = np.clip((params.tempo_bpm - 55) / 120, 0, 1)
    loudness = np.clip((params.loudness_db + 31) / 22, 0, 1)
    density = np.clip(np.log2(params.note_density / 0.2) / 4.5, 0, 1)
    arousal = 0.3 * tempo + 0.3 * loudness + 0.25 * params.percussiveness + 0.15 * density
    valence = 0.25 * params.major + 0.6 * params.brightness + 0.15 * tempo
    return round(float(np.clip(valence, 0, 1)), 4), round(float(np.clip(arousal, 0, 1)), 4)


def render_track(params: TrackParams, seconds: float, sample_rate: int, channels: int) -> np.ndarray:
    """Render a track to audio.

    Parameters
    ----------
    params : TrackParams
        What to play.
    seconds : float
        Length of the track.
    sample_rate : int
        Samples per second.
    channels : int
        1 (mono) or 2 (stereo: pad and melody panned apart).

    Returns
    -------
    np.ndarray [shape=(n_samples, channels), dtype=float32]
        The mix, within [-1, 1].
    """
    rng = np.random.default_rng(params.seed)
    n_samples = int(round(seconds * sample_rate))
    beat = 60.0 / params.tempo_bpm
    chords = _chords(params, n_bars=int(np.ceil(seconds / (4 * beat))) + 1)
    bass = _bass(params, chords, beat, n_samples, sample_rate)
    pad = _pad(params, chords, beat, n_samples, sample_rate)
    melody = _melody(params, beat, n_samples, sample_rate, rng)
    pans = (0.5,) if channels == 1 else (0.35, 0.65)
    # channels first, float32: every filter runs along contiguous rows
    pitched = np.stack([bass + 2 * ((1 - pan) * pad + pan * melody) for pan in pans])
    pitched = _resonance(pitched, params.formant_hz, sample_rate)
    if params.drive > 1:
        pitched = np.tanh(params.drive * pitched) / np.float32(params.drive)
    mix = pitched + (_drums(params, beat, n_samples, sample_rate, rng)
                     + _air(params.air, n_samples, sample_rate, rng)).astype(np.float32)
    return np.ascontiguousarray(_master(mix, params, sample_rate).T)


def _pitch(params: TrackParams, degree: int, octave_midi: int, leading_tone: bool = False) -> int:
    """MIDI note of a scale degree (0-based, may exceed 6) above ``octave_midi`` + key."""
    scale = _MAJOR_SCALE if params.major else _MINOR_SCALE
    semitone = scale[degree % 7] + (leading_tone and not params.major and degree % 7 == 6)
    return octave_midi + params.key + semitone + 12 * (degree // 7)


def _chords(params: TrackParams, n_bars: int) -> list[tuple[int, int, int]]:
    """MIDI notes of the triad of each bar, around C3 + key (minor: V is major)."""
    chords = []
    for bar in range(n_bars):
        degree = params.progression[bar % len(params.progression)]
        chords.append(tuple(_pitch(params, step, 48, leading_tone=degree == 4)
                            for step in (degree, degree + 2, degree + 4)))
    return chords


def _wavetable(waveform: str, brightness: float, highest_hz: float, sample_rate: int) -> np.ndarray:
    """One period of a band-limited waveform whose harmonics fall off faster when dull."""
    n_harmonics = int(max(1, min(24, 0.45 * sample_rate / highest_hz)))
    harmonics = np.arange(1, n_harmonics + 1)
    rolloff = 2.6 - 1.8 * brightness
    amplitudes = harmonics ** -rolloff
    if waveform == "square":
        amplitudes[1::2] = 0.0
    elif waveform == "soft":
        amplitudes[harmonics > 4] = 0.0
    phase = 2 * np.pi * np.arange(_TABLE_SIZE) / _TABLE_SIZE
    table = amplitudes @ np.sin(np.outer(harmonics, phase))
    return table / np.abs(table).max()


def _midi_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _voice(notes, table, attack, decay, n_samples, sample_rate) -> np.ndarray:
    """Play ``(onset s, length s, midi, velocity)`` notes monophonically on a wavetable.

    Each note is rendered on its own span only (its phase starting at zero), under an
    attack/decay envelope with a 10 ms taper at its end.
    """
    out = np.zeros(n_samples, dtype=np.float32)
    longest = int(max((length for _, length, _, _ in notes), default=0) * sample_rate) + 1
    since_onset = np.arange(longest, dtype=np.float64)
    shape = ((1 - np.exp(-since_onset / (attack * sample_rate)))
             * np.exp(-since_onset / (decay * sample_rate))).astype(np.float32)
    taper = np.linspace(1, 0, max(2, int(0.01 * sample_rate)), dtype=np.float32)
    table = table.astype(np.float32)
    for onset, length, midi, velocity in notes:
        start = int(onset * sample_rate)
        stop = min(n_samples, start + int(length * sample_rate))
        n = stop - start
        if n <= len(taper):
            continue
        index = (since_onset[:n] * (_midi_hz(midi) * _TABLE_SIZE / sample_rate)).astype(np.int64)
        segment = table[index & (_TABLE_SIZE - 1)]
        segment *= shape[:n]
        segment[n - len(taper):] *= taper
        out[start:stop] += np.float32(velocity) * segment
    return out


def _pad(params, chords, beat, n_samples, sample_rate) -> np.ndarray:
    """Sustained chords, one per bar, softer attack for calmer tracks."""
    table = _wavetable(params.waveform, params.brightness, _midi_hz(max(map(max, chords))), sample_rate)
    attack = 0.02 + 0.3 * (1 - params.percussiveness)
    voices = [
        _voice([(4 * beat * bar, 4 * beat, chord[i], level) for bar, chord in enumerate(chords)],
               table, attack, 8 * beat, n_samples, sample_rate)
        for i, level in enumerate(_PAD_LEVELS[params.major])
    ]
    return 0.12 * sum(voices)


def _bass(params, chords, beat, n_samples, sample_rate) -> np.ndarray:
    """The chord root two octaves down, plucked on every beat (every half bar when calm)."""
    step = beat if ARCHETYPES[params.archetype].percussiveness > 0.2 else 2 * beat
    notes = []
    for bar, chord in enumerate(chords):
        for onset in np.arange(4 * beat * bar, 4 * beat * (bar + 1) - 1e-9, step):
            notes.append((onset, step, chord[0] - 12, 1.0))
    table = _wavetable("saw", 0.2, _midi_hz(max(n[2] for n in notes)), sample_rate)
    return 0.35 * _voice(notes, table, 0.005, 0.25 + 0.5 * (1 - params.percussiveness), n_samples, sample_rate)


def _melody(params, beat, n_samples, sample_rate, rng) -> np.ndarray:
    """A random walk on the scale, ``note_density`` notes per beat on a sixteenth grid.

    Steps prefer the tones of the bar's chord and of the tonic triad, and the walk is
    pulled towards the tonic, so the melody states the key (and, in minor, its minor third).
    """
    step = beat * max(0.25, round(4 / params.note_density) / 4)
    moves = np.arange(-2, 3)
    degree = 7
    notes = []
    for onset in np.arange(0.0, n_samples / sample_rate, step):
        chord = params.progression[int(onset / (4 * beat)) % len(params.progression)]
        candidates = np.clip(degree + moves, 0, 13)
        in_chord, in_tonic_triad = (candidates - chord) % 7, candidates % 7
        weight = (1.0 + 2.0 * ((in_chord % 2 == 0) & (in_chord <= 4))
                  + 1.0 * ((in_tonic_triad % 2 == 0) & (in_tonic_triad <= 4)) + 1.5 * (in_tonic_triad == 0))
        weight *= np.exp(-np.abs(candidates - 7) / 4)
        degree = int(candidates[rng.choice(len(moves), p=weight / weight.sum())])
        if rng.random() < 0.85:
            midi = _pitch(params, degree, 60, leading_tone=chord == 4)
            notes.append((onset, step * (1 - 0.5 * params.percussiveness), midi, rng.uniform(0.7, 1.0)))
    table = _wavetable(params.waveform, params.brightness, _midi_hz(params.key + 60 + 26), sample_rate)
    decay = 0.15 + 1.2 * (1 - params.percussiveness)
    return 0.3 * _voice(notes, table, 0.005 + 0.04 * (1 - params.percussiveness), decay, n_samples, sample_rate)


def _drums(params, beat, n_samples, sample_rate, rng) -> np.ndarray:
    """Kick, snare and hi-hat patterns: the pattern is the archetype's, the level the track's.

    The pattern follows the archetype's percussiveness (so it does not jump between
    tracks of one archetype) and the level the track's own percussiveness.
    """
    drums = np.zeros(n_samples)
    perc = ARCHETYPES[params.archetype].percussiveness
    if perc < 0.12:
        return drums
    n_beats = int(n_samples / sample_rate / beat) + 1
    beats = np.arange(n_beats)
    kicks = beats if perc >= 0.65 else beats[beats % 2 == 0]
    if 0.4 < perc < 0.65:
        kicks = np.concatenate([kicks, beats[beats % 4 == 2] + 0.5])
    hat_step = 0.25 if perc >= 0.75 else 0.5 if perc >= 0.25 else 1.0
    hats = np.arange(0, n_beats, hat_step)
    snares = beats[beats % 2 == 1] if perc >= 0.25 else beats[:0]
    for sound, times, level in ((_kick(sample_rate), kicks, 1.0),
                                (_snare(sample_rate, rng), snares, 0.6),
                                (_hat(sample_rate, rng), hats, 0.25)):
        _place(drums, sound, times * beat * sample_rate, level * rng.uniform(0.8, 1.0, len(times)))
    return 0.8 * params.percussiveness * drums


def _place(track: np.ndarray, sound: np.ndarray, starts: np.ndarray, velocities: np.ndarray) -> None:
    """Add ``sound`` into ``track`` at each start sample, scaled by its velocity."""
    for start, velocity in zip(starts.astype(np.int64), velocities):
        stop = min(len(track), start + len(sound))
        if start < stop:
            track[start:stop] += velocity * sound[:stop - start]


def _kick(sample_rate: int) -> np.ndarray:
    """A sine whose pitch drops from 125 to 45 Hz."""
    t = np.arange(int(0.3 * sample_rate)) / sample_rate
    frequency = 45 + 80 * np.exp(-t / 0.03)
    return np.sin(2 * np.pi * np.cumsum(frequency) / sample_rate) * np.exp(-t / 0.12)


def _snare(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise over a short 185 Hz body."""
    t = np.arange(int(0.2 * sample_rate)) / sample_rate
    band = butter(2, [1000, min(4500, 0.45 * sample_rate)], btype="bandpass", fs=sample_rate, output="sos")
    noise = sosfilt(band, rng.normal(size=len(t)))
    return (noise / np.abs(noise).max() * np.exp(-t / 0.07)
            + 0.5 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05))


def _hat(sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """A short burst of high-passed noise."""
    t = np.arange(int(0.08 * sample_rate)) / sample_rate
    high = butter(2, min(7000, 0.4 * sample_rate), btype="highpass", fs=sample_rate, output="sos")
    noise = sosfilt(high, rng.normal(size=len(t)))
    return noise / np.abs(noise).max() * np.exp(-t / 0.02)


def _air(level: float, n_samples: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """Band-passed noise (300 Hz - 3 kHz) swelling over about eight seconds."""
    if level == 0:
        return np.zeros(n_samples)
    band = butter(2, [300, 3000], btype="bandpass", fs=sample_rate, output="sos")
    t = np.arange(n_samples) / sample_rate
    swell = 0.6 + 0.4 * np.sin(2 * np.pi * t / 8 + rng.uniform(0, 2 * np.pi))
    return 0.1 * level * sosfilt(band, rng.normal(size=n_samples)) * swell


def _resonance(audio: np.ndarray, centre_hz: float, sample_rate: int) -> np.ndarray:
    """Boost a band around ``centre_hz`` by 12 dB (a peaking equaliser, Q = 1.5)."""
    omega = 2 * np.pi * min(centre_hz, 0.4 * sample_rate) / sample_rate
    alpha = np.sin(omega) / (2 * 1.5)
    gain = 10 ** (12 / 40)
    b = np.array([1 + alpha * gain, -2 * np.cos(omega), 1 - alpha * gain])
    a = np.array([1 + alpha / gain, -2 * np.cos(omega), 1 - alpha / gain])
    sos = np.concatenate([b, a])[None] / a[0]
    return sosfilt(sos.astype(audio.dtype), audio, axis=-1)


def _master(mix: np.ndarray, params: TrackParams, sample_rate: int) -> np.ndarray:
    """Low-pass by brightness, set the loudness, soft-clip, and fade in and out.

    ``mix`` and the result are float32, shaped ``(channels, n_samples)``.
    """
    cutoff = min(800 * 2 ** (4 * params.brightness), 0.45 * sample_rate)
    mix = sosfilt(butter(2, cutoff, fs=sample_rate, output="sos").astype(np.float32), mix, axis=-1)
    mix *= np.float32(10 ** (params.loudness_db / 20) / max(np.sqrt(np.mean(np.square(mix, dtype=np.float64))), 1e-9))
    np.tanh(mix, out=mix)
    n_samples = mix.shape[-1]
    fade = np.linspace(0, 1, min(int(_FADE_SECONDS * sample_rate), n_samples // 2), dtype=np.float32)
    mix[:, :len(fade)] *= fade
    mix[:, n_samples - len(fade):] *= fade[::-1]
    return mix
