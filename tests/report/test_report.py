"""The run report of the demo run: sections, figures, equations, and numbers that match the artifacts."""

from __future__ import annotations

import dataclasses
import io
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cli_runner import invoke
from mdit_py_plugins.anchors.index import slugify
from PIL import Image

from moodscape.report.document import build_report
from moodscape.report.record import SECTIONS
from moodscape.report.html import EquationError, equation_mathml, render_html

pytestmark = pytest.mark.slow

DISPLAY_MATH = re.compile(r"^\$\$\n(.*?)\n\$\$$", re.S | re.M)
INLINE_MATH = re.compile(r"(?<![$\\])\$(?!\$)(.+?)(?<!\\)\$")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]+)\)")


@pytest.fixture(scope="module")
def report(demo_run) -> tuple[str, str]:
    """The Markdown and HTML that ``moodscape run`` wrote as its last stage."""
    return ((demo_run / "report" / "report.md").read_text(encoding="utf-8"),
            (demo_run / "report" / "report.html").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def record(demo_run, demo_corpus):
    """The demo run as the report reads it (a RunRecord), for variations of it."""
    from moodscape.artifacts import Workdir
    from moodscape.config import Settings
    from moodscape.pipeline.collection import load_collection
    from moodscape.pipeline.report import load_run

    settings = Settings.load(demo_corpus / "moodscape.toml")
    collection = load_collection(settings)
    return load_run(settings, Workdir(demo_run), collection.tracks, collection.vocabulary)


def table_after(markdown: str, header_start: str) -> list[dict[str, str]]:
    """The rows of the first Markdown table whose header begins with ``header_start``."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_start}"))
    header = [cell.strip() for cell in lines[start].strip("|").split(" | ")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (cell.strip() for cell in line.strip().strip("|").split(" | ")))))
    return rows


def metrics(run: Path, name: str) -> dict:
    return json.loads((run / "metrics" / f"{name}.json").read_text())


def test_every_section_is_present_in_order(report):
    markdown, html = report
    positions = [markdown.index(f"\n## {title}\n") for title in SECTIONS]
    assert positions == sorted(positions)
    for title in SECTIONS:
        assert f'<h2 id="{slugify(title)}">{title}</h2>' in html
        assert f'href="#{slugify(title)}"' in html  # the contents list links every section


def test_every_figure_exists_and_is_a_valid_png(report, demo_run):
    markdown, html = report
    shown = IMAGE.findall(markdown)
    assert {Path(path).stem for path in shown} >= {"k_selection", "cluster_tags", "confusion_matrix", "training_curves",
                                                    "av_scatter", "label_distribution", "va_map"}
    for path in shown:
        image = Image.open(demo_run / "report" / path)
        assert image.format == "PNG" and image.width > 300 and image.height > 200
        image.verify()
    embedded = re.findall(r'<img src="data:image/png;base64,([^"]+)"', html)
    assert len(embedded) == len(shown)
    assert not re.search(r"""(src|href)=["']?(https?:)?//|url\(|<script|<link""", html)  # self-contained: nothing to fetch


def test_every_equation_is_well_formed_and_rendered_as_mathml(report):
    markdown, html = report
    display = DISPLAY_MATH.findall(markdown)
    prose = DISPLAY_MATH.sub("", re.sub(r"```.*?```", "", markdown, flags=re.S))
    inline = INLINE_MATH.findall(prose)
    assert len(display) >= 15 and len(inline) >= 20
    for tex in display + inline:
        equation_mathml(tex, display=False)  # raises EquationError when malformed
    for expected in (r"\frac{b(i) - a(i)}", r"h = W_0 x + \frac{\alpha}{r} B A x", r"-\log \sigma(f(a) - f(b))",
                     r"R^2 = 1 -", r"\left\lVert z_i - \mu_k \right\rVert^2"):
        assert expected in markdown
    blocks = re.findall(r'<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">.*?</math>', html, re.S)
    assert len(blocks) == len(display)
    for block in blocks:
        ET.fromstring(block)
    assert "$$" not in html


def test_tables_show_the_numbers_of_the_metrics_files(report, demo_run, demo_corpus):
    from conftest import planted_k

    markdown, _ = report
    classifier = metrics(demo_run, "classifier")
    [row] = table_after(markdown, "test accuracy")
    assert row["test accuracy"] == f"{classifier['accuracy']:.3f}"
    assert row["test macro-F1"] == f"{classifier['macro_f1']:.3f}"
    per_class = {row["label"]: row for row in table_after(markdown, "label | precision")}
    assert {label: row["F1"] for label, row in per_class.items()} == {
        label: f"{values['f1']:.3f}" for label, values in classifier["per_class"].items()}
    parts = {row["part"]: row["parameters"] for row in table_after(markdown, "part | parameters")}
    assert parts["LoRA adapters"] == f"{classifier['parameters']['adapters']:,}"
    adapters = table_after(markdown, "layer | kernel")
    assert adapters[-1]["r(d + k)"] == f"{classifier['parameters']['adapters']:,}"  # r(d + k) summed = peft's count
    av = metrics(demo_run, "av")
    pairwise = {(row["ground truth"], row["dimension"]): row["accuracy %"] for row in table_after(markdown, "ground truth")}
    assert pairwise == {(row["file"], row["type"]): f"{row['accuracy']:.2f}" for row in av["pairwise"]}
    skipped = {row["stage"]: row["tracks or rows skipped"] for row in table_after(markdown, "stage | tracks or rows skipped")}
    for stage in ("features", "label", "train", "infer"):
        listed = (demo_run / "reports" / f"skipped_{stage}.csv").read_text().splitlines()[1:]
        assert skipped[stage] == f"{len(listed):,}"
    selection = json.loads((demo_run / "cluster_selection.json").read_text())
    assert selection["k"] == planted_k(demo_corpus)
    assert f"**Chosen K = {planted_k(demo_corpus)}**" in markdown
    names = {row["cluster"]: row["name"] for row in table_after(markdown, "cluster | training tracks")}
    for cluster in json.loads((demo_run / "cluster_profiles.json").read_text())["clusters"]:
        assert names[str(cluster["cluster_id"])] == (cluster["name"] or f"dropped: {cluster['dropped']}")


def test_the_av_tables_show_the_baselines_of_baselines_json(report, demo_run):
    from moodscape.report.markdown import number
    from moodscape.report.valence_arousal import BASELINE_COLUMNS

    markdown, _ = report
    baselines = json.loads((demo_run / "metrics" / "baselines.json").read_text())["av"]
    predictors = baselines["predictors"]
    pairwise = {(row["ground truth"], row["dimension"]): row for row in table_after(markdown, "ground truth")}
    assert {"best_feature", "ridge", "spotify"} <= set(predictors)
    for key, column in BASELINE_COLUMNS.items():
        for row in predictors.get(key, {}).get("pairwise", []):
            assert pairwise[(row["file"], row["type"])][column] == number(row["accuracy"], 2)
    regression = {row["dimension"]: row for row in table_after(markdown, "dimension | R² model")}
    for name in ("valence", "arousal"):
        for key, label in (("model", "model"), ("best_feature", "best feature"), ("ridge", "ridge")):
            assert regression[name][f"R² {label}"] == number(predictors[key]["held_out"][name]["r2"])
            assert regression[name][f"r {label}"] == number(predictors[key]["held_out"][name]["pearson_r"])
        assert regression[name]["best single feature"] == predictors["best_feature"]["feature"][name]
    assert f"**{baselines['musav_set']}**" in markdown and "**In-domain:**" in markdown


def test_a_run_without_baselines_says_which_command_writes_them(record):
    markdown = build_report(dataclasses.replace(record, baselines={})).markdown()
    assert "`metrics/baselines.json` (the baselines of step 4) is missing. `moodscape train-av` writes it" in markdown
    assert "| ground truth | dimension | accuracy % | correct |" in markdown


def test_reproducibility_lists_every_artifact_hash_of_the_manifest(report, demo_run):
    markdown, _ = report
    manifest = json.loads((demo_run / "manifest.json").read_text())
    hashes = {row["artifact"].strip("`"): row["SHA-256"].strip("`") for row in table_after(markdown, "stage | finished")}
    for stage, entry in manifest["stages"].items():
        if stage != "report":  # the report cannot list its own hash
            assert {name: hashes[name] for name in entry["outputs"]} == entry["outputs"]


def test_a_run_without_later_stages_says_what_is_missing(record):
    partial = dataclasses.replace(record, pretrain=None, classifier=None, adapters=None, av=None, musav=None, lookup=None)
    document = build_report(partial)
    markdown = document.markdown()
    for command in ("moodscape train", "moodscape train-av", "moodscape infer"):
        assert f"`{command}` writes it" in markdown
    assert set(document.figures) == {"figures/k_selection.png", "figures/cluster_tags.png"}
    render_html(markdown, document.figures, title="partial")


def test_a_run_trained_without_adapters_says_so(record):
    classifier = {**record.classifier, "mode": "probe", "parameters": {**record.classifier["parameters"], "adapters": 0}}
    markdown = build_report(dataclasses.replace(record, classifier=classifier, adapters=record.adapters.iloc[:0])).markdown()
    assert "**This run trained `probe`** (linear probe (head only)) instead of LoRA adapters" in markdown
    assert "| layer | kernel |" not in markdown


def test_a_contrastive_backbone_is_described_by_its_loss_and_scores(record):
    history = {"epochs_run": 4, "best_epoch": 3, "best_val_nt_xent": 2.5, "best_val_retrieval_top1": 0.4,
               "config": {"temperature": 0.1},
               "epochs": [{"epoch": e, "train_loss": 3.0 / e, "val_loss": 3.2 / e, "val_retrieval_top1": 0.1 * e} for e in range(1, 5)]}
    pretrain = {"objective": "contrastive", "reason": "auto: none of the 150 tracks carries a tag", "history": history,
                "test": {"embedding_retrieval_top1": 0.625}, "n_tracks": {"train": 100, "validation": 25, "test": 25}}
    document = build_report(dataclasses.replace(record, pretrain=pretrain))
    markdown = document.markdown()
    assert "It is trained without labels (auto: none of the 150 tracks carries a tag)" in markdown
    assert "62.5 % of 50 crops" in markdown and "τ = 0.1" in markdown
    assert "first trained on the original tags" not in markdown
    equation = next(tex for tex in DISPLAY_MATH.findall(markdown) if r"\exp(\cos(z_i, z_{p(i)}) / \tau)" in tex)
    equation_mathml(equation, display=True)
    assert "backbone pretraining without labels (left)" in markdown
    render_html(markdown, document.figures, title="contrastive")


def test_the_report_command_rereads_the_artifacts(demo_run, demo_corpus, tmp_path):
    import shutil

    workdir = tmp_path / "run"
    shutil.copytree(demo_run, workdir, ignore=shutil.ignore_patterns("mels", "ablation", ".chunks", "jobs"))
    av = json.loads((workdir / "metrics" / "av.json").read_text())
    av["pairwise"][0]["accuracy"] = 12.345
    (workdir / "metrics" / "av.json").write_text(json.dumps(av))
    result = invoke("report", "--config", demo_corpus / "moodscape.toml", "--workdir", workdir)
    assert result.exit_code == 0, result.output
    assert "| 12.35 |" in (workdir / "report" / "report.md").read_text()


# --------------------------------------------------------------------------- equations and HTML, no run needed


@pytest.mark.parametrize("tex", [r"\frac{a}{b", r"a}", r"\left( x", r"\notacommand{x}"])
def test_a_malformed_equation_is_refused(tex):
    with pytest.raises(EquationError):
        equation_mathml(tex, display=True)


def test_html_inlines_figures_and_converts_every_equation():
    png = io.BytesIO()
    Image.new("RGB", (4, 3), "white").save(png, format="PNG")
    markdown = "# T\n\nInline $x_i^2$ here.\n\n$$\n\\sum_{i=1}^{n} x_i\n$$\n\n![a figure](figures/f.png)\n"
    html = render_html(markdown, {"figures/f.png": png.getvalue()}, title="t")
    assert html.count("<math") == 2 and 'display="block"' in html
    assert 'src="data:image/png;base64,' in html and "figures/f.png" in html
    with pytest.raises(KeyError):
        render_html(markdown, {}, title="t")
