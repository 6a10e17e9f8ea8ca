"""Stage 4: valence and arousal from track embeddings, cross-fitted on MusAV.

Every song has an embedding, absolute targets (Spotify valence and energy as arousal,
0–1, NaN where unknown) and human pairwise judgments in disjoint triplets. With ``s`` the
:class:`~moodscape.models.av.AVRegressor` output (column ``c``: 0 valence, 1 arousal) the
objectives are

- ``"mse"``: :math:`\\frac{1}{|K|}\\sum_{(i,c) \\in K} (s_{ic} - y_{ic})^2` over the known
  targets ``K``;
- ``"rank"``: RankNet (Burges et al. 2005), i.e. Bradley–Terry with a logistic link:
  :math:`P(a \\succ b) = \\sigma(s_{ac} - s_{bc})` and the mean binary cross-entropy
  :math:`-[t \\log P + (1 - t) \\log(1 - P)]` over judged pairs, ``t`` = 1 when ``a`` is
  higher, 0 when ``b`` is, 0.5 when they are equal (``"ab"``); other answers are skipped;
- ``"combined"``: ``mse + rank_weight · rank``.

:func:`fit_av` trains one :class:`~moodscape.models.av.AVMember` (AdamW, early stopping on
the validation objective). :func:`cross_fit_av` splits the songs into folds of whole
connected components of the pair graph (:func:`song_folds`), so no judged pair straddles
train and test, fits one member per fold and returns their ensemble and the out-of-fold
predictions. Arrays and tables in, arrays and models out; the caller saves
(:func:`moodscape.models.av.av_checkpoint`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.model_selection import GroupKFold
from sklearn.preprocessing import StandardScaler

from moodscape.config import AVModelSettings, CallOptions
from moodscape.errors import DataError
from moodscape.models.av import AV_OUTPUTS, AVEnsemble, AVMember
from moodscape.models.checkpoint import resolve_device
from moodscape.training.loop import require_finite_state, seed_everything, stop_if_diverged

logger = logging.getLogger(__name__)

PAIR_TARGETS = {"a": 1.0, "b": 0.0, "ab": 0.5}
"""RankNet target of each ``higher_value``: P(a above b)."""
PAIR_COLUMNS = {name: column for column, name in enumerate(AV_OUTPUTS)}
"""Output column of each pair ``type``."""


class AVConfig(AVModelSettings, CallOptions):
    """Settings of :func:`fit_av` and :func:`cross_fit_av`: the ``[av]`` settings
    (defaults and ranges live in :class:`moodscape.config.AVModelSettings`), the call's seed
    and progress bar, and the device.

    Attributes
    ----------
    mode : {"mse", "rank", "combined"}
        The objective (see the module docstring).
    hidden, dropout
        Hidden width and dropout of the :class:`~moodscape.models.av.AVRegressor`.
    lr, weight_decay : float
        AdamW learning rate (constant) and decoupled weight decay.
    epochs, patience : int
        Most epochs; stop after ``patience`` epochs without a lower validation objective.
    batch_size : int
        Songs per step, about: a batch holds whole connected components (triplets).
    rank_weight : float
        Weight of the rank loss in ``"combined"``. The outputs live on the 0–1 target
        scale, where ``sigmoid(s_a - s_b)`` stays near 0.5, so a weight of 1 lets the rank
        term stretch the outputs against the MSE term.
    folds : int
        Cross-fitting folds (at least 3: one tests, the next validates, the rest train).
    seed : int
        Seeds folds, initialisation, shuffling and dropout (fold ``f`` trains with ``seed + f``).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"``.
    progress : bool
        Show a progress bar over folds.
    """

    device: Literal["auto", "cpu", "cuda"] = "cpu"
    progress: bool = False


@dataclass(frozen=True)
class PairSet:
    """Judged pairs as rows of an embedding array.

    Attributes
    ----------
    index_a, index_b : np.ndarray [shape=(P,), dtype=int64]
        Rows of songs a and b.
    column : np.ndarray [shape=(P,), dtype=int64]
        Output column judged: 0 valence, 1 arousal.
    target : np.ndarray [shape=(P,), dtype=float32]
        P(a above b): 1, 0 or 0.5 (:data:`PAIR_TARGETS`).
    """

    index_a: np.ndarray
    index_b: np.ndarray
    column: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


def pair_set(pairs: pd.DataFrame, songids: Sequence[str]) -> PairSet:
    """Map judged pairs to rows of ``songids``, keeping pairs with both songs among them.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Columns ``songid_a``, ``songid_b``, ``type`` (``arousal`` or ``valence``) and
        ``higher_value``; answers other than ``a``, ``b``, ``ab`` are skipped.
    songids : sequence of str
        The songs of the embedding rows, unique.

    Returns
    -------
    PairSet
    """
    _require_columns(pairs, ["songid_a", "songid_b", "type", "higher_value"])
    unknown = set(pairs["type"]) - PAIR_COLUMNS.keys()
    if unknown:
        raise DataError(f"pair types must be {' or '.join(PAIR_COLUMNS)}, got {sorted(map(str, unknown))}")
    songs = _song_index(songids)
    index_a, index_b = songs.get_indexer(pairs["songid_a"]), songs.get_indexer(pairs["songid_b"])
    keep = (index_a >= 0) & (index_b >= 0) & pairs["higher_value"].isin(PAIR_TARGETS.keys()).to_numpy()
    return PairSet(
        index_a=index_a[keep].astype(np.int64),
        index_b=index_b[keep].astype(np.int64),
        column=pairs["type"][keep].map(PAIR_COLUMNS).to_numpy(np.int64),
        target=pairs["higher_value"][keep].map(PAIR_TARGETS).to_numpy(np.float32),
    )


def song_folds(songids: Sequence[str], pairs: pd.DataFrame, n_folds: int, seed: int) -> np.ndarray:
    """Assign songs to folds by whole connected components of the pair graph.

    The components (a MusAV triplet; a song in no pair is its own) are the groups of
    scikit-learn's ``GroupKFold``, which deals them, largest first, to the fold with the
    fewest songs so far, so the folds' sizes differ by less than one component; ``seed``
    shuffles the order in which equally large components are dealt.

    Parameters
    ----------
    songids : sequence of str
        The songs, unique.
    pairs : pandas.DataFrame
        Columns ``songid_a`` and ``songid_b``; pairs naming other songs are ignored.
    n_folds : int
    seed : int

    Returns
    -------
    np.ndarray [shape=(n_songs,), dtype=int64]
        Fold of each song, ``0..n_folds-1``.

    Raises
    ------
    DataError
        If there are fewer components than folds.
    """
    _require_columns(pairs, ["songid_a", "songid_b"])
    songs = _song_index(songids)
    index_a, index_b = songs.get_indexer(pairs["songid_a"]), songs.get_indexer(pairs["songid_b"])
    known = (index_a >= 0) & (index_b >= 0)
    component = _components(index_a[known], index_b[known], len(songs))
    n_components = component.max() + 1
    if n_components < n_folds:
        raise DataError(f"{n_components} groups of connected songs cannot fill {n_folds} folds")
    # GroupKFold deals equally large groups highest label first: label them in reverse of a
    # seeded shuffle, so they are dealt in the shuffled order
    shuffled = np.random.default_rng(seed).permutation(n_components)
    labels = np.empty(n_components, np.int64)
    labels[shuffled] = np.arange(n_components)[::-1]
    groups = labels[component]
    folds = np.empty(len(songs), np.int64)
    for fold, (_, members) in enumerate(GroupKFold(n_splits=n_folds).split(groups, groups=groups)):
        folds[members] = fold
    return folds


def masked_mse(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error ``(B, 2)`` vs ``(B, 2)`` over the finite targets (0 if none)."""
    known = torch.isfinite(targets)
    errors = torch.where(known, outputs - targets.nan_to_num(0.0), 0.0)  # (B, 2)
    return errors.pow(2).sum() / known.sum().clamp(min=1)


def ranknet_loss(outputs_a: torch.Tensor, outputs_b: torch.Tensor, column: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """RankNet BCE of ``sigmoid(s_a - s_b)`` in each pair's column vs its target (0 if no pairs).

    ``outputs_a``, ``outputs_b`` are ``(P, 2)``, ``column`` and ``target`` ``(P,)``.
    """
    if len(target) == 0:
        return outputs_a.sum() * 0.0
    rows = torch.arange(len(target), device=target.device)
    margin = outputs_a[rows, column] - outputs_b[rows, column]  # (P,) s_a - s_b
    return F.binary_cross_entropy_with_logits(margin, target)


def fit_av(
    X_train: np.ndarray,
    y_train: np.ndarray | None,
    pairs_train: PairSet,
    X_val: np.ndarray,
    y_val: np.ndarray | None,
    pairs_val: PairSet,
    config: AVConfig | None = None,
) -> tuple[AVMember, dict]:
    """Train one member on the training songs, selecting the epoch on the validation songs.

    Each epoch shuffles the connected components of the training pair graph (MusAV
    triplets) and cuts them into batches of about ``batch_size`` songs, so every judged
    pair falls in one batch: a step scores a batch once and takes the MSE over its songs
    and the rank loss over its pairs.

    Parameters
    ----------
    X_train, X_val : np.ndarray [shape=(n, d)]
        Embeddings; the standardisation is fitted on ``X_train`` only.
    y_train, y_val : np.ndarray [shape=(n, 2)] or None
        Targets (valence, arousal), NaN where unknown; ``None``: all unknown.
    pairs_train, pairs_val : PairSet
        Judged pairs, as rows of ``X_train`` and ``X_val``.
    config : AVConfig, optional

    Returns
    -------
    member : AVMember
        The best epoch's weights, on CPU, in eval mode. In ``"rank"`` mode each output is
        calibrated onto the target scale by least squares of the training targets on the
        training scores (where a column has at least two known targets).
    history : dict
        ``mode``, ``epochs_run``, ``best_epoch``, ``best_val_loss``, ``train_loss`` and
        ``val_loss`` (per epoch), ``calibration_slope``, ``calibration_intercept``.

    Raises
    ------
    ConfigError
        When the training diverges: a NaN or infinite loss, naming the epoch and the lr.
    """
    config = config or AVConfig()
    device = resolve_device(config.device)

    # -- data: float32 tensors on the device; standardisation from the training songs
    x_train, t_train = _inputs(X_train, y_train, "training", device)  # (n, d), (n, 2)
    x_val, t_val = _inputs(X_val, y_val, "validation", device)
    if x_val.shape[1] != x_train.shape[1]:
        raise DataError(f"training embeddings have {x_train.shape[1]} dimensions, validation ones {x_val.shape[1]}")
    for split, targets, pairs in (("training", t_train, pairs_train), ("validation", t_val, pairs_val)):
        _check_objective(config.mode, targets, pairs, split)
    p_train, p_val = _pair_tensors(pairs_train, device), _pair_tensors(pairs_val, device)
    scaler = StandardScaler().fit(np.asarray(X_train, np.float64))
    component = _components(pairs_train.index_a, pairs_train.index_b, len(x_train))

    # -- model
    seed_everything(config.seed)
    member = AVMember(x_train.shape[1], config.hidden, config.dropout)
    member.mean.copy_(torch.from_numpy(scaler.mean_))
    member.scale.copy_(torch.from_numpy(scaler.scale_))
    member.to(device)

    # -- optimiser
    optimizer = torch.optim.AdamW(member.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    rng = np.random.default_rng(config.seed)

    # -- loop: one pass over the training songs, validation, early stopping
    history = {"mode": config.mode, "train_loss": [], "val_loss": []}
    best_val_loss, best_epoch, best_state = math.inf, 0, _state_copy(member)
    for epoch in range(1, config.epochs + 1):
        member.train()
        step_losses = []
        for songs, pairs in _component_batches(component, p_train, config.batch_size, rng):
            outputs = member(x_train[songs])  # (B, 2)
            loss = _objective(outputs, t_train[songs], pairs, config)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step_losses.append(loss.item())
            stop_if_diverged(step_losses[-1], epoch=epoch, lr=config.lr, what="the AV regressor's training loss")
        member.eval()
        with torch.no_grad():
            val_loss = _objective(member(x_val), t_val, p_val, config).item()
        stop_if_diverged(val_loss, epoch=epoch, lr=config.lr, what="the AV regressor's validation loss")
        history["train_loss"].append(float(np.mean(step_losses)))
        history["val_loss"].append(val_loss)
        if val_loss < best_val_loss:
            best_val_loss, best_epoch, best_state = val_loss, epoch, _state_copy(member)
        elif epoch - best_epoch >= config.patience:
            break

    # -- the best epoch, calibrated in rank mode
    member.load_state_dict(require_finite_state(best_state, "AV regressor"))
    member.eval()
    if config.mode == "rank":
        _calibrate(member, x_train, t_train)
    history.update(
        epochs_run=len(history["val_loss"]),
        best_epoch=best_epoch,
        best_val_loss=best_val_loss,
        calibration_slope=member.slope.tolist(),
        calibration_intercept=member.intercept.tolist(),
    )
    logger.info("AV member (%s): best epoch %d of %d, validation loss %.4f", config.mode, best_epoch, epoch, best_val_loss)
    return member.cpu(), history


@dataclass
class AVCrossFit:
    """What :func:`cross_fit_av` returns.

    Attributes
    ----------
    ensemble : AVEnsemble
        The members of every fold, on CPU, in eval mode.
    oof : np.ndarray [shape=(n, 2)]
        Out-of-fold (valence, arousal): each song predicted by the member of its test fold.
    folds : np.ndarray [shape=(n,), dtype=int64]
        Test fold of each song.
    history : list of dict
        Per fold, :func:`fit_av`'s history plus ``fold`` and ``n_songs`` per split.
    """

    ensemble: AVEnsemble
    oof: np.ndarray
    folds: np.ndarray
    history: list[dict]


def cross_fit_av(
    embeddings: np.ndarray,
    songids: Sequence[str],
    targets: np.ndarray | None,
    pairs: pd.DataFrame,
    config: AVConfig | None = None,
) -> AVCrossFit:
    """Fit one member per fold: fold ``f`` tests, fold ``(f + 1) % K`` validates, the rest train.

    Parameters
    ----------
    embeddings : np.ndarray [shape=(n, d)]
    songids : sequence of str
        The song of each row, unique.
    targets : np.ndarray [shape=(n, 2)] or None
        (valence, arousal), NaN where unknown.
    pairs : pandas.DataFrame
        Judged pairs: ``songid_a``, ``songid_b``, ``type``, ``higher_value``.
    config : AVConfig, optional

    Returns
    -------
    AVCrossFit
    """
    config = config or AVConfig()
    embeddings = np.asarray(embeddings, np.float32)
    songs = _song_index(songids)
    if embeddings.ndim != 2 or len(embeddings) != len(songs):
        raise DataError(f"expected embeddings of shape ({len(songs)}, d), one row per song, got {embeddings.shape}")
    targets = _targets(targets, len(songs), "all")
    folds = song_folds(songs, pairs, config.folds, config.seed)

    members, oof, histories = [], np.full((len(songs), len(AV_OUTPUTS)), np.nan), []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, disable=not config.progress) as progress:
        task = progress.add_task(f"AV {config.mode} folds", total=config.folds)
        for fold in range(config.folds):
            test, val = folds == fold, folds == (fold + 1) % config.folds
            train = ~(test | val)
            member, history = fit_av(
                embeddings[train], targets[train], pair_set(pairs, songs[train]),
                embeddings[val], targets[val], pair_set(pairs, songs[val]),
                config.model_copy(update={"seed": config.seed + fold}),
            )  # fmt: skip
            oof[test] = member.predict(embeddings[test])
            n_songs = {"train": int(train.sum()), "validation": int(val.sum()), "test": int(test.sum())}
            histories.append({"fold": fold, "n_songs": n_songs, **history})
            members.append(member)
            progress.update(task, advance=1)
    return AVCrossFit(ensemble=AVEnsemble(members).eval(), oof=oof, folds=folds, history=histories)


def _objective(outputs: torch.Tensor, targets: torch.Tensor, pairs: tuple[torch.Tensor, ...], config: AVConfig) -> torch.Tensor:
    """The mode's loss of ``outputs`` ``(B, 2)``, given their targets and pairs (rows of ``outputs``)."""
    index_a, index_b, column, target = pairs
    if config.mode == "mse":
        return masked_mse(outputs, targets)
    rank = ranknet_loss(outputs[index_a], outputs[index_b], column, target)
    if config.mode == "rank":
        return rank
    return masked_mse(outputs, targets) + config.rank_weight * rank


def _components(index_a: np.ndarray, index_b: np.ndarray, n_songs: int) -> np.ndarray:
    """Connected component ``(n_songs,)`` of each song in the graph of pairs ``(index_a, index_b)``."""
    edges = coo_matrix((np.ones(len(index_a)), (index_a, index_b)), shape=(n_songs, n_songs))
    return connected_components(edges, directed=False)[1]


def _component_batches(component: np.ndarray, pairs: tuple[torch.Tensor, ...], batch_size: int, rng: np.random.Generator):
    """Yield ``(songs, pairs)`` per batch: song rows and the pairs among them, as rows of the batch.

    Components are shuffled and laid end to end; a batch starts at the first component
    that starts past each multiple of ``batch_size`` songs, so no component is cut.
    """
    device = pairs[0].device
    rank = rng.permutation(component.max() + 1)[component]  # shuffled order of each song's component
    order = np.argsort(rank, kind="stable")  # songs, component after component
    slot = np.empty_like(order)
    slot[order] = np.arange(len(order))  # position of each song in the epoch
    first_of_component = np.flatnonzero(np.r_[True, np.diff(rank[order]) != 0])
    component_start = np.repeat(first_of_component, np.diff(np.r_[first_of_component, len(order)]))
    batch_of_slot = component_start // batch_size
    bounds = np.flatnonzero(np.r_[True, np.diff(batch_of_slot) != 0, True])
    index_a, index_b, column, target = pairs
    slot_a = torch.from_numpy(slot).to(device)[index_a]
    slot_b = torch.from_numpy(slot).to(device)[index_b]
    pair_batch = torch.from_numpy(batch_of_slot).to(device)[slot_a]
    for start, stop in zip(bounds[:-1], bounds[1:]):
        chosen = torch.nonzero(pair_batch == batch_of_slot[start]).squeeze(1)
        batch_pairs = (slot_a[chosen] - start, slot_b[chosen] - start, column[chosen], target[chosen])
        yield torch.from_numpy(order[start:stop]).to(device), batch_pairs


def _calibrate(member: AVMember, x: torch.Tensor, targets: torch.Tensor) -> None:
    """Put the ranking scores on the targets' scale: ``slope · score + intercept`` per output.

    The scores of the training songs get the targets' mean and standard deviation (slope
    ``std(targets) / std(scores)``; the order the listeners' judgments taught is kept even
    where the targets disagree with it). Least squares
    would shrink the scale by the correlation, and with targets that only partly agree with
    the listeners (Spotify's energy follows the mastering level) every prediction would
    crowd the mean, leaving mood queries at the ends of the scale with no track.
    """
    with torch.no_grad():
        scores = member.scores(x).cpu().double().numpy()  # (n, 2)
    targets = targets.cpu().double().numpy()
    for column in range(len(AV_OUTPUTS)):
        known = np.isfinite(targets[:, column])
        if known.sum() >= 2 and np.ptp(scores[known, column]) > 0:
            score, target = scores[known, column], targets[known, column]
            slope = target.std() / score.std()
            member.slope[column], member.intercept[column] = slope, target.mean() - slope * score.mean()


def _inputs(X, y, split: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    X = np.array(X, np.float32)  # a writable copy for torch
    if X.ndim != 2 or len(X) == 0 or not np.isfinite(X).all():
        raise DataError(f"{split} embeddings must be a non-empty finite (n, d) array, got shape {X.shape}")
    y = _targets(y, len(X), split)
    return torch.from_numpy(X).to(device), torch.from_numpy(y.astype(np.float32)).to(device)


def _targets(y, n: int, split: str) -> np.ndarray:
    if y is None:
        return np.full((n, len(AV_OUTPUTS)), np.nan)
    y = np.asarray(y, np.float64)
    if y.shape != (n, len(AV_OUTPUTS)):
        raise DataError(f"{split} targets must be ({n}, 2) (valence, arousal), got {y.shape}")
    return y


def _check_objective(mode: str, targets: torch.Tensor, pairs: PairSet, split: str) -> None:
    if mode != "rank" and not torch.isfinite(targets).any():
        raise DataError(f"mode {mode!r} needs absolute targets, but the {split} songs have none")
    if mode != "mse" and len(pairs) == 0:
        raise DataError(f"mode {mode!r} needs judged pairs, but the {split} songs have none")


def _pair_tensors(pairs: PairSet, device: torch.device) -> tuple[torch.Tensor, ...]:
    arrays = (pairs.index_a, pairs.index_b, pairs.column, pairs.target)
    return tuple(torch.from_numpy(np.array(array)).to(device) for array in arrays)


def _state_copy(member: AVMember) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone() for key, value in member.state_dict().items()}


def _song_index(songids: Sequence[str]) -> pd.Index:
    songs = pd.Index(songids)
    if not songs.is_unique:
        raise DataError(f"song ids repeat: {sorted(map(str, songs[songs.duplicated()].unique()))[:5]}")
    return songs


def _require_columns(table: pd.DataFrame, columns: list[str]) -> None:
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise DataError(f"pairs table lacks column(s) {', '.join(missing)}")
