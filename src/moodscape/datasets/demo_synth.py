"""Synthesised music with planted acoustic archetypes and no shortcut to its mood, for the demo corpus.

A track is drums (kick, snare, hi-hat from shaped noise and pitch sweeps), a bass line, a
chord pad and a melody, each voice a band-limited wavetable oscillator under note
envelopes. An :class:`Archetype` is a kind of *music*, not a sound: it fixes the centre of
its musical structure (tempo, melody notes per beat, articulation, attack, distortion,
mode, harmonic dissonance, register) and its rhythm pattern. :func:`draw_track_params`
scatters one track around that centre and draws its **nuisances** independently of
everything else: the mastering level (a 24 dB range), the key, the instruments' waveform
and body resonance, the tone (a low-pass tilt) and the balance of the four voices. So no
single level or timbre measurement tells the archetype, valence or arousal of a track.

The true valence and arousal (:func:`valence_arousal`) are functions of several musical
factors with interactions, as in real music: arousal rises with tempo, note density,
percussive attack and distortion (and their products: fast *and* hard-hitting is more than
the sum); valence with the major mode, harmonic consonance, register and tempo. The
archetypes combine the factors in conflicting ways (slow but crushing doom, fast but gentle
arpeggios, dissonant music in a major key), so no single factor orders them. Minor-mode
tracks use minor-key harmony (tonic triad on every other bar, the dominant with its
leading tone, the minor third voiced loudest) so that key-profile mode estimation hears
them as minor.
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
# the dissonant tones a pad chord may carry: a minor second and a tritone above its root
_CLUSTER_TONES = (1, 6)
# per-track spread of the musical factors around the archetype's centre (standard deviations)
_SPREAD = {"tempo": 0.08, "note_density": 0.25, "attack": 0.10, "roughness": 0.10,
           "dissonance": 0.12, "register": 3.0, "legato": 0.1}
# the nuisances: mastering level (dBFS RMS), low-pass cut-off (Hz, log-uniform), formant
# (Hz, log-uniform) and the level of each voice (dB)
LEVEL_DB_RANGE = (-32.0, -8.0)
CUTOFF_HZ_RANGE = (3500.0, 7000.0)
_FORMANT_SPREAD = 0.2  # log scale
_VOICE_BALANCE_DB = 2.0
# keys: a track is transposed up to a major second either way from its archetype's usual key
# (as a genre's instruments favour some keys), so every archetype is heard in five keys
_HOME_KEYS = (0, 4, 9, 2, 7, 5, 10, 3)
_KEY_SPREAD = 2
DRUM_PATTERNS = ("none", "half-time", "backbeat", "four-on-the-floor", "breakbeat")
"""The rhythm patterns an archetype's drums may play."""


@dataclass(frozen=True)
class Archetype:
    """The centre of one family of synthesised tracks: a musical structure, not a timbre.

    Parameters
    ----------
    name : str
        Short descriptive name.
    tempo_bpm : float
        Beats per minute.
    note_density : float
        Melody notes per beat.
    attack : float
        0 (soft swells, no drums) to 1 (hard plucks and loud drums).
    roughness : float
        0 (clean) to 1 (heavily distorted pitched instruments).
    major_probability : float
        Probability that a track of this archetype is in a major key.
    dissonance : float
        0 (consonant triads) to 1 (every chord carries a minor second and a tritone).
    register : float
        Semitones by which melody and pad sit above (or below) their middle register.
    legato : float
        0 (staccato: notes a quarter of their step) to 1 (notes held to the next one).
    waveforms : tuple of str
        The instruments a track may be played on (one is drawn per track): ``"saw"``,
        ``"square"``, ``"triangle"`` or ``"soft"``.
    formant_hz : float
        Typical centre of the resonance that colours the instruments (their body); each
        track's is drawn around it (a factor of about 1.2 either way), as one genre's
        instruments differ from recording to recording.
    drums : str
        One of :data:`DRUM_PATTERNS`.
    signature_tags : tuple of str
        Mood/theme tags that uploaders give this kind of music more often than others.
    """

    name: str
    tempo_bpm: float
    note_density: float
    attack: float
    roughness: float
    major_probability: float
    dissonance: float
    register: float
    legato: float
    waveforms: tuple[str, ...]
    formant_hz: float
    drums: str
    signature_tags: tuple[str, ...]


ARCHETYPES = (
    Archetype("upbeat dance", 122, 2.0, 0.80, 0.05, 0.90, 0.10, -3, 0.5, ("square",), 2500, "four-on-the-floor",
              ("energetic", "party", "upbeat", "fun")),
    Archetype("heavy doom", 60, 0.5, 0.80, 0.95, 0.10, 0.60, -12, 0.9, ("saw",), 250, "half-time",
              ("action", "heavy", "powerful", "sport")),
    Archetype("sad ballad", 70, 0.75, 0.10, 0.00, 0.10, 0.25, 3, 0.9, ("soft",), 600, "none",
              ("sad", "melancholic", "emotional")),
    Archetype("flowing arpeggios", 138, 4.0, 0.30, 0.00, 0.90, 0.05, 12, 0.7, ("triangle",), 2500, "none",
              ("relaxing", "calm", "soft", "romantic")),
    Archetype("dark tension", 92, 0.25, 0.70, 0.40, 0.85, 0.95, -4, 1.0, ("square",), 250, "breakbeat",
              ("dark", "deep", "cool")),
    Archetype("driving rock", 164, 1.0, 0.90, 0.65, 0.15, 0.15, 5, 0.3, ("saw",), 1200, "backbeat",
              ("epic", "dramatic", "trailer", "adventure")),
    Archetype("meditative", 56, 0.25, 0.05, 0.05, 0.60, 0.15, 5, 1.0, ("soft",), 900, "none",
              ("meditative", "space", "soundscape", "dream")),
    Archetype("retro game", 116, 3.0, 0.60, 0.30, 0.90, 0.10, 7, 0.2, ("square",), 4000, "backbeat",
              ("retro", "game", "funny", "groovy")),
)
"""All archetypes; a corpus with ``n`` archetypes uses the first ``n``."""


@dataclass(frozen=True)
class TrackParams:
    """The musical factors and the nuisances of one synthesised track (see :class:`Archetype`).

    Musical factors: ``tempo_bpm``, ``note_density``, ``attack``, ``roughness``, ``major``,
    ``dissonance``, ``register`` and ``legato``. Nuisances, drawn independently of the
    archetype and of valence and arousal: ``level_db`` (mastering level, dBFS RMS),
    ``key`` (tonic pitch class, 0 = C), ``waveform``, ``formant_hz``, ``cutoff_hz`` (the
    tone) and ``voice_db`` (the drum, bass, pad and melody levels). ``progression`` holds the
    chord roots as scale degrees, and ``seed`` seeds the notes, drum noise and humanisation.
    """

    archetype: int
    tempo_bpm: float
    note_density: float
    attack: float
    roughness: float
    major: bool
    dissonance: float
    register: float
    legato: float
    level_db: float
    key: int
    waveform: str
    formant_hz: float
    cutoff_hz: float
    voice_db: tuple[float, float, float, float]
    progression: tuple[int, ...]
    seed: int


def draw_track_params(archetype_index: int, rng: np.random.Generator, major: bool | None = None) -> TrackParams:
    """Draw the parameters of one track around the centre of its archetype.

    Every musical factor gets its own per-track noise (so two tracks of one archetype
    still differ in valence and arousal, and ordering them is a musical question); every
    nuisance is drawn from one wide range shared by all archetypes.

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
    """
    centre = ARCHETYPES[archetype_index]
    drawn_major = bool(rng.random() < centre.major_probability)
    major = drawn_major if major is None else bool(major)
    progressions = _MAJOR_PROGRESSIONS if major else _MINOR_PROGRESSIONS
    factor = rng.normal(size=7)

    def unit(value: float, noise: float) -> float:
        return float(np.clip(value + noise, 0.0, 1.0))

    return TrackParams(
        archetype=archetype_index,
        tempo_bpm=round(float(centre.tempo_bpm * np.exp(_SPREAD["tempo"] * factor[0])), 2),
        note_density=float(centre.note_density * np.exp(_SPREAD["note_density"] * factor[1])),
        attack=unit(centre.attack, _SPREAD["attack"] * factor[2]),
        roughness=unit(centre.roughness, _SPREAD["roughness"] * factor[3]),
        major=major,
        dissonance=unit(centre.dissonance, _SPREAD["dissonance"] * factor[4]),
        register=float(np.clip(centre.register + _SPREAD["register"] * factor[5], -15, 14)),
        legato=unit(centre.legato, _SPREAD["legato"] * factor[6]),
        level_db=round(float(rng.uniform(*LEVEL_DB_RANGE)), 2),
        key=int((_HOME_KEYS[archetype_index % len(_HOME_KEYS)] + rng.integers(-_KEY_SPREAD, _KEY_SPREAD + 1)) % 12),
        waveform=centre.waveforms[rng.integers(len(centre.waveforms))],
        formant_hz=float(centre.formant_hz * np.exp(rng.normal(0, _FORMANT_SPREAD))),
        cutoff_hz=float(np.exp(rng.uniform(*np.log(CUTOFF_HZ_RANGE)))),
        voice_db=tuple(float(v) for v in rng.uniform(-_VOICE_BALANCE_DB, _VOICE_BALANCE_DB, 4)),
        progression=progressions[rng.integers(len(progressions))],
        seed=int(rng.integers(2**32)),
    )


def musical_factors(params: TrackParams) -> dict[str, float]:
    """The factors valence and arousal are made of, each scaled to [0, 1].

    Returns
    -------
    dict
        ``tempo`` (60 → 0, 170 BPM → 1), ``density`` (log scale, 0.2 → 0, 6 notes per
        beat → 1), ``attack``, ``roughness``, ``major`` (0 or 1), ``consonance``
        (1 − dissonance) and ``register`` (−12 → 0, +12 semitones → 1).
    """
    return {
        "tempo": float(np.clip((params.tempo_bpm - 60) / 110, 0, 1)),
        "density": float(np.clip(np.log(params.note_density / 0.2) / np.log(30), 0, 1)),
        "attack": params.attack,
        "roughness": params.roughness,
        "major": float(params.major),
        "consonance": 1.0 - params.dissonance,
        "register": float(np.clip((params.register + 12) / 24, 0, 1)),
    }


def valence_arousal(params: TrackParams) -> tuple[float, float]:
    """The true valence and arousal of a track, from its musical factors.

    Arousal = 0.25·tempo + 0.2·density + 0.2·attack + 0.2·roughness
    + 0.15·(tempo·attack + density·roughness), mapped from [0, 0.85] to [0.05, 0.95];
    valence = 0.2·major + 0.3·consonance + 0.25·register + 0.15·tempo
    + 0.1·(major·consonance), mapped from [0, 1] to [0.05, 0.95] (factors of
    :func:`musical_factors`). Every term is heard in the rendered audio; the mastering
    level, key and timbre are not terms.

    Parameters
    ----------
    params : TrackParams

    Returns
    -------
    valence, arousal : float
        Both in [0, 1].
    """
    f = musical_factors(params)
    arousal = (0.25 * f["tempo"] + 0.2 * f["density"] + 0.2 * f["attack"] + 0.2 * f["roughness"]
               + 0.15 * (f["tempo"] * f["attack"] + f["density"] * f["roughness"]))
    valence = (0.2 * f["major"] + 0.3 * f["consonance"] + 0.25 * f["register"] + 0.15 * f["tempo"]
               + 0.1 * f["major"] * f["consonance"])

    def scaled(value: float, top: float) -> float:
        return round(float(np.clip(0.05 + 0.9 * value / top, 0, 1)), 4)

    return scaled(valence, 1.0), scaled(arousal, 0.85)


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
    drum_db, bass_db, pad_db, melody_db = params.voice_db
    chords = _chords(params, n_bars=int(np.ceil(seconds / (4 * beat))) + 1)
    bass = _db(bass_db) * _bass(params, chords, beat, n_samples, sample_rate)
    pad = _db(pad_db) * _pad(params, chords, beat, n_samples, sample_rate)
    melody = _db(melody_db) * _melody(params, beat, n_samples, sample_rate, rng)
    pans = (0.5,) if channels == 1 else (0.35, 0.65)
    # channels first, float32: every filter runs along contiguous rows
    pitched = np.stack([bass + 2 * ((1 - pan) * pad + pan * melody) for pan in pans])
    pitched = _resonance(pitched, params.formant_hz, sample_rate)
    pitched = _distort(pitched, params.roughness)
    drums = _db(drum_db) * _drums(params, beat, n_samples, sample_rate, rng)
    mix = pitched + drums.astype(np.float32)
    return np.ascontiguousarray(_master(mix, params, sample_rate).T)


def _db(level_db: float) -> np.float32:
    return np.float32(10 ** (level_db / 20))


def _pitch(params: TrackParams, degree: int, octave_midi: int, leading_tone: bool = False) -> int:
    """MIDI note of a scale degree (0-based, may exceed 6) above ``octave_midi`` + key."""
    scale = _MAJOR_SCALE if params.major else _MINOR_SCALE
    semitone = scale[degree % 7] + (leading_tone and not params.major and degree % 7 == 6)
    return octave_midi + params.key + semitone + 12 * (degree // 7)


def _chords(params: TrackParams, n_bars: int) -> list[tuple[int, int, int]]:
    """MIDI notes of the triad of each bar, around C3 + key + half the register (minor: V is major)."""
    base = 48 + int(round(params.register / 2))
    chords = []
    for bar in range(n_bars):
        degree = params.progression[bar % len(params.progression)]
        chords.append(tuple(_pitch(params, step, base, leading_tone=degree == 4)
                            for step in (degree, degree + 2, degree + 4)))
    return chords


def _wavetable(waveform: str, highest_hz: float, sample_rate: int) -> np.ndarray:
    """One period of a band-limited waveform."""
    n_harmonics = int(max(1, min(24, 0.45 * sample_rate / highest_hz)))
    harmonics = np.arange(1, n_harmonics + 1)
    amplitudes = 1.0 / harmonics
    if waveform == "square":
        amplitudes[1::2] = 0.0
    elif waveform == "triangle":
        amplitudes = np.where(harmonics % 2 == 1, harmonics ** -2.0, 0.0)
    elif waveform == "soft":
        amplitudes = harmonics ** -2.5
    phase = 2 * np.pi * np.arange(_TABLE_SIZE) / _TABLE_SIZE
    table = amplitudes @ np.sin(np.outer(harmonics, phase))
    return table / np.abs(table).max()


def _midi_hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _voice(notes, table, attack, decay, n_samples, sample_rate) -> np.ndarray:
    """Play ``(onset s, length s, midi, velocity)`` notes on a wavetable.

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


def _attack_seconds(params: TrackParams) -> float:
    """Onset time of the pitched voices: 2 ms plucks when hard-hitting, 150 ms swells when soft."""
    return 0.002 + 0.15 * (1 - params.attack) ** 2


def _pad(params, chords, beat, n_samples, sample_rate) -> np.ndarray:
    """Sustained chords, one per bar; dissonant tracks add a minor second and a tritone."""
    table = _wavetable(params.waveform, _midi_hz(max(map(max, chords)) + 6), sample_rate)
    attack = 0.01 + 0.4 * (1 - params.attack)
    voices = [
        _voice([(4 * beat * bar, 4 * beat, chord[i], level) for bar, chord in enumerate(chords)],
               table, attack, 8 * beat, n_samples, sample_rate)
        for i, level in enumerate(_PAD_LEVELS[params.major])
    ]
    for semitones in _CLUSTER_TONES:
        voices.append(_voice([(4 * beat * bar, 4 * beat, chord[0] + semitones, 1.2 * params.dissonance)
                              for bar, chord in enumerate(chords)], table, attack, 8 * beat, n_samples, sample_rate))
    return 0.12 * sum(voices)


def _bass(params, chords, beat, n_samples, sample_rate) -> np.ndarray:
    """The chord root an octave below the pad, plucked on every beat (every half bar without drums)."""
    step = 2 * beat if ARCHETYPES[params.archetype].drums == "none" else beat
    notes = []
    for bar, chord in enumerate(chords):
        for onset in np.arange(4 * beat * bar, 4 * beat * (bar + 1) - 1e-9, step):
            notes.append((onset, step * (0.4 + 0.6 * params.legato), chord[0] - 12, 1.0))
    table = _wavetable("saw", _midi_hz(max(n[2] for n in notes)), sample_rate)
    return 0.35 * _voice(notes, table, _attack_seconds(params), 0.25 + 0.5 * (1 - params.attack), n_samples, sample_rate)


def _melody(params, beat, n_samples, sample_rate, rng) -> np.ndarray:
    """A random walk on the scale, ``note_density`` notes per beat on a sixteenth grid.

    Steps prefer the tones of the bar's chord and of the tonic triad, and the walk is
    pulled towards the tonic, so the melody states the key (and, in minor, its minor third).
    Dissonant tracks replace some notes by their chromatic upper neighbour.
    """
    step = beat * max(0.25, round(4 / params.note_density) / 4)
    base = 60 + int(round(params.register))
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
            midi = _pitch(params, degree, base, leading_tone=chord == 4)
            midi += int(rng.random() < 0.4 * params.dissonance)
            length = step * (0.25 + 0.75 * params.legato)
            notes.append((onset, length, midi, rng.uniform(0.7, 1.0)))
    table = _wavetable(params.waveform, _midi_hz(base + params.key + 26), sample_rate)
    decay = 0.15 + 1.5 * (1 - params.attack)
    return 0.3 * _voice(notes, table, _attack_seconds(params), decay, n_samples, sample_rate)


def _drum_times(pattern: str, n_beats: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Kick, snare and hi-hat onsets (in beats) of a rhythm pattern."""
    beats = np.arange(n_beats, dtype=float)
    if pattern == "half-time":
        return beats[beats % 4 == 0], beats[beats % 4 == 2], np.arange(0, n_beats, 1.0)
    if pattern == "backbeat":
        return beats[beats % 2 == 0], beats[beats % 2 == 1], np.arange(0, n_beats, 0.5)
    if pattern == "four-on-the-floor":
        return beats, beats[beats % 2 == 1], np.arange(0, n_beats, 0.25)[np.arange(0, n_beats, 0.25) % 1 != 0]
    if pattern == "breakbeat":
        kicks = np.concatenate([beats[beats % 4 == 0], beats[beats % 4 == 1] + 0.5, beats[beats % 4 == 2] + 0.5])
        return np.sort(kicks), beats[beats % 2 == 1], np.arange(0, n_beats, 0.5)
    empty = beats[:0]
    return empty, empty, empty


def _drums(params, beat, n_samples, sample_rate, rng) -> np.ndarray:
    """The archetype's rhythm pattern, as loud as the track's attack makes it."""
    drums = np.zeros(n_samples)
    kicks, snares, hats = _drum_times(ARCHETYPES[params.archetype].drums, int(n_samples / sample_rate / beat) + 1)
    if not len(kicks):
        return drums
    for sound, times, level in ((_kick(sample_rate), kicks, 1.0),
                                (_snare(sample_rate, rng), snares, 0.6),
                                (_hat(sample_rate, rng), hats, 0.25)):
        _place(drums, sound, times * beat * sample_rate, level * rng.uniform(0.8, 1.0, len(times)))
    return (0.2 + 0.8 * params.attack) * drums


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


def _resonance(audio: np.ndarray, centre_hz: float, sample_rate: int) -> np.ndarray:
    """Boost a band around ``centre_hz`` by 9 dB (a peaking equaliser, Q = 1.5): the instruments' body."""
    omega = 2 * np.pi * min(centre_hz, 0.4 * sample_rate) / sample_rate
    alpha = np.sin(omega) / (2 * 1.5)
    gain = 10 ** (9 / 40)
    b = np.array([1 + alpha * gain, -2 * np.cos(omega), 1 - alpha * gain])
    a = np.array([1 + alpha / gain, -2 * np.cos(omega), 1 - alpha / gain])
    sos = np.concatenate([b, a])[None] / a[0]
    return sosfilt(sos.astype(audio.dtype), audio, axis=-1)


def _distort(pitched: np.ndarray, roughness: float) -> np.ndarray:
    """Overdrive the pitched voices: a soft clipper driven 1× (clean) to 25× (fuzz), level kept."""
    drive = np.float32(np.exp(np.log(25.0) * roughness))
    if drive <= 1.01:
        return pitched
    peak = np.float32(max(float(np.abs(pitched).max()), 1e-9))
    return np.tanh(drive * pitched / peak) * peak / np.tanh(drive)


def _master(mix: np.ndarray, params: TrackParams, sample_rate: int) -> np.ndarray:
    """Low-pass to the track's tone, set its mastering level, soft-clip, and fade in and out.

    ``mix`` and the result are float32, shaped ``(channels, n_samples)``.
    """
    cutoff = min(params.cutoff_hz, 0.45 * sample_rate)
    mix = sosfilt(butter(2, cutoff, fs=sample_rate, output="sos").astype(np.float32), mix, axis=-1)
    mix *= np.float32(10 ** (params.level_db / 20) / max(np.sqrt(np.mean(np.square(mix, dtype=np.float64))), 1e-9))
    np.tanh(mix, out=mix)
    n_samples = mix.shape[-1]
    fade = np.linspace(0, 1, min(int(_FADE_SECONDS * sample_rate), n_samples // 2), dtype=np.float32)
    mix[:, :len(fade)] *= fade
    mix[:, n_samples - len(fade):] *= fade[::-1]
    return mix
