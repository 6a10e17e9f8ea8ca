"""The headline results of a run, each beside its baselines, as the CLI prints them.

:func:`run_summary` reads them back from a work directory (the table ``moodscape run``
ends with); :func:`av_summary` formats stage 4's, which ``moodscape train-av`` prints too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import artifacts
from ..artifacts import Workdir


def run_summary(workdir: Workdir) -> dict[str, Any]:
    """The headline results of a run, each beside its baselines, read back from its artifacts (the closing table).

    Baselines come from ``metrics/baselines.json`` (scored on the same held-out items as
    the model); a headline whose baselines are absent is shown alone.
    """
    summary: dict[str, Any] = {}
    baselines = artifacts.read_json(workdir.baselines) if workdir.baselines.exists() else {}
    if workdir.cluster_selection.exists():
        selection = artifacts.read_json(workdir.cluster_selection)
        summary["K"] = f"{selection.get('k')}: {selection.get('reason', '')}"
    if workdir.cluster_profiles.exists():
        profiles = artifacts.read_json(workdir.cluster_profiles)
        for profile in profiles.get("clusters", []):
            name = profile["name"] or f"(dropped: {profile['dropped']})"
            summary[f"cluster {profile['cluster_id']}"] = f"{name} — {profile['size']} training tracks"
    pretrain = artifacts.read_json(workdir.pretrain_metrics) if workdir.pretrain_metrics.exists() else None
    if pretrain is not None and pretrain.get("objective") == "contrastive":
        top1 = pretrain.get("test", {}).get("embedding_retrieval_top1")
        summary["backbone (test)"] = (f"contrastive, without tags ({pretrain.get('reason')}): each crop's partner is "
                                      f"its nearest crop for {_percent(None if top1 is None else 100 * top1)} of crops")
    elif pretrain is not None:
        test = pretrain.get("test", {})
        summary["backbone tags (test)"] = _beside(
            f"ROC-AUC macro {_number(test.get('roc_auc_macro'))}, PR-AUC macro {_number(test.get('pr_auc_macro'))}",
            _stage1_probe(baselines.get("tags"), ("roc_auc_macro", "ROC-AUC"), ("pr_auc_macro", "PR-AUC")))
    if workdir.classifier_metrics.exists():
        metrics = artifacts.read_json(workdir.classifier_metrics)
        summary["classifier (test)"] = _beside(
            f"accuracy {metrics['accuracy']:.3f}, macro-F1 {metrics['macro_f1']:.3f}",
            _stage1_probe(baselines.get("labels"), ("accuracy", "accuracy"), ("macro_f1", "macro-F1")))
    if workdir.av_metrics.exists():
        summary |= av_summary(artifacts.read_json(workdir.av_metrics), baselines.get("av"))
    if workdir.inference_lookup.exists():
        lookup = artifacts.read_table(workdir.inference_lookup)
        summary["lookup"] = f"{len(lookup)} tracks in {workdir.inference_lookup}"
    if workdir.report_html.exists():
        summary["report"] = f"{workdir.report_html} (and {workdir.report_markdown.name} with its figures)"
    return summary


def av_summary(av: dict[str, Any], baselines: dict[str, Any] | None) -> dict[str, str]:
    """MusAV pairwise accuracy and R² per dimension, beside the stage-4 baselines of ``baselines.json``."""
    predictors = (baselines or {}).get("predictors", {})
    summary = {}
    if av.get("musav_set"):
        summary["valence/arousal data"] = (f"{av['musav_set']}: out-of-fold, but in-domain (cross-fitted on its own "
                                           "pairs and targets; the Spotify row uses no training)")
    for name in ("arousal", "valence"):
        accuracy = _beside(f"MusAV pairwise accuracy {_percent(av['pairwise_accuracy'].get(name))}",
                           _baseline_values(predictors, name, ("best_feature", "ridge", "spotify", "oracle"),
                                            lambda row: _percent(row["pairwise_accuracy"].get(name))))
        r2 = _beside(f"R² {_number(av['held_out'][name]['r2'])}",
                     _baseline_values(predictors, name, ("best_feature", "ridge"),
                                      lambda row: _number(row["held_out"][name]["r2"])))
        summary[f"{name} (held out)"] = f"{accuracy}; {r2}"
    return summary


def _baseline_values(predictors: dict[str, Any], dimension: str, keys: tuple[str, ...],
                     value: Callable[[dict[str, Any]], str]) -> str:
    """``"best feature rms_mean 85.0 %, ridge 88.0 %"``: each present baseline row's short name and value."""
    return ", ".join(f"{_short(key, predictors[key], dimension)} {value(predictors[key])}" for key in keys if key in predictors)


def _short(key: str, row: dict[str, Any], dimension: str) -> str:
    """Short name of a stage-4 baseline row; the best single feature is named."""
    if key == "best_feature":
        return f"best feature {row['feature'][dimension].split(' (')[0]}"
    return {"ridge": "ridge", "spotify": "Spotify targets", "oracle": "archetype oracle"}.get(key, key)


def _stage1_probe(section: dict[str, Any] | None, *metrics: tuple[str, str]) -> str:
    """The stage-1-feature logistic probe of a ``baselines.json`` section (``tags`` or ``labels``), or ``""``."""
    probe = (section or {}).get("stage1_features_logistic")
    if not isinstance(probe, dict):
        return ""
    return "logistic on stage-1 features: " + ", ".join(f"{label} {_number(probe.get(key))}" for key, label in metrics)


def _beside(headline: str, baselines: str) -> str:
    return f"{headline} ({baselines})" if baselines else headline


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} %"
