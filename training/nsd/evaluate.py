"""Step 5: the paper's Table 1 (retrieval) and Table 2 (captioning) on the test images.

Every number comes from the code the app and ``brainview eval`` use: ``BrainModel`` predicts,
``brainview.decoding.retrieval.evaluate_stage`` runs the MindEye-2 protocol with the four
directions named as in DESIGN.md §4, ``Blip2Adapter.caption`` captions with the bundle's
generation settings, ``brainview.decoding.metrics.caption_metrics`` scores against every
reference caption. This is the only step that reads the test split.

Writes ``evaluation.json``, ``evaluation.md`` and ``captions_{stage}.json`` (per test image: the
decoded caption, its references and its scores).
"""

from __future__ import annotations

from pathlib import Path

from training.nsd.data import GENERATION, load_adapter, load_brain_model, split_data
from training.nsd.layout import WorkDir, progress, read_json, write_json

#: The paper's Table 1 (subject 1), with its directions mapped to DESIGN.md §4's names following
#: the paper's own caption ("I → B refers to retrieving the correct image given its fMRI signal").
PAPER_TABLE1 = {
    "stage1": {"image_given_brain": 0.437, "brain_given_image": 0.222},
    "stage2": {"image_given_brain": 0.722, "brain_given_image": 0.549, "text_given_brain": 0.496,
               "brain_given_text": 0.450},
}
#: The paper's Table 2 (subject 1).
PAPER_TABLE2 = {
    "stage1": {"meteor": 0.303, "rouge1": 0.443, "rougeL": 0.407, "sentence": 0.447, "clip_b": 0.742, "clip_l": 0.639},
    "stage2": {"meteor": 0.327, "rouge1": 0.467, "rougeL": 0.430, "sentence": 0.515, "clip_b": 0.771, "clip_l": 0.674},
}
DIRECTIONS = ("image_given_brain", "brain_given_image", "text_given_brain", "brain_given_text")
TABLE2_COLUMNS = ("meteor", "rouge1", "rougeL", "sentence", "clip_b", "clip_l", "bleu1", "bleu4", "cider")


def evaluate(work: str | Path, *, device: str = "auto", batch_size: int = 16, repeats: int | None = None,
             seed: int = 42, captions: bool = True, metrics=None, clip_models=None) -> dict:
    """Run step 5; skipped when ``evaluation.json`` exists with the same settings."""
    from brainview.decoding.metrics import caption_metrics
    from brainview.decoding.retrieval import evaluate_stage

    work = WorkDir(work)
    settings = {"repeats": repeats, "seed": seed, "captions": captions, "metrics": list(metrics) if metrics else None,
                "generation": GENERATION, "stages_fitted": sorted(p.stem for p in work.path.glob("stage?.safetensors"))}
    if (work / "evaluation.json").exists() and work.log_path("evaluate").is_file() \
            and work.read_log("evaluate")["settings"] == settings:
        progress("evaluate: complete, nothing to do")
        return read_json(work / "evaluation.json")
    model = load_brain_model(work)
    test = split_data(work, "test")
    references = [record["captions"] for record in test.records]
    adapter = load_adapter(work, device) if captions else None
    result = {"subject": work.read_log("prepare")["settings"]["subject"], "n_test_images": len(test.fmri),
              "normalization": work.read_log("prepare")["settings"]["normalize"], "stages": {}}
    for stage in model.stages:
        predicted, retrieval = evaluate_stage(model, stage, test.fmri, test.tokens, test.texts, test.text_index,
                                              repeats=repeats, seed=seed)
        entry = {"retrieval": retrieval}
        progress(f"evaluate {stage}: " + ", ".join(f"{d} {v['top1']:.3f}" for d, v in retrieval.items()))
        if adapter is not None:
            decoded = adapter.caption(predicted, batch_size=batch_size, **GENERATION)
            report = caption_metrics(decoded, references, metrics, clip_models=clip_models, device=device)
            entry.update(captioning=report.means, missing=report.missing, notes=report.notes)
            write_json(work / f"captions_{stage}.json", [
                {"nsd_id": r["nsd_id"], "coco_id": r["coco_id"], "caption": c, "references": r["captions"],
                 "scores": {m: float(v[i]) for m, v in report.per_caption.items()}}
                for i, (r, c) in enumerate(zip(test.records, decoded))])
            progress(f"evaluate {stage}: " + ", ".join(
                f"{m} {v:.3f}" for m, v in report.means.items() if v is not None))
        result["stages"][stage] = entry
    write_json(work / "evaluation.json", result)
    (work / "evaluation.md").write_text(markdown(result), encoding="utf-8")
    work.write_log("evaluate", settings, device=device)
    return result


def _cell(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown(result: dict) -> str:
    """Tables 1 and 2 as Markdown, the paper's rows alongside."""
    lines = [f"# NSD subj{result['subject']:02d}: evaluation on {result['n_test_images']} test images",
             "", f"Normalization: {result['normalization']}. Model selection on validation images only; the paper "
             "selected on the test set.", "",
             "## Table 1: top-1 retrieval (pool of min(300, test images); mean [95% interval] over repeats)", "",
             "| model | " + " | ".join(DIRECTIONS) + " |", "|---" * (len(DIRECTIONS) + 1) + "|"]
    for stage, entry in result["stages"].items():
        cells = []
        for d in DIRECTIONS:
            r = entry["retrieval"].get(d)
            cells.append("–" if r is None else f"{r['top1']:.3f} [{r['ci95'][0]:.3f}, {r['ci95'][1]:.3f}]")
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    for stage, row in PAPER_TABLE1.items():
        lines.append(f"| paper {stage} | " + " | ".join(_cell(row.get(d)) for d in DIRECTIONS) + " |")
    if any("captioning" in e for e in result["stages"].values()):
        lines += ["", "## Table 2: captioning", "", "| model | " + " | ".join(TABLE2_COLUMNS) + " |",
                  "|---" * (len(TABLE2_COLUMNS) + 1) + "|"]
        for stage, entry in result["stages"].items():
            if "captioning" in entry:
                lines.append(f"| {stage} | " + " | ".join(_cell(entry["captioning"].get(m)) for m in TABLE2_COLUMNS)
                             + " |")
        for stage, row in PAPER_TABLE2.items():
            lines.append(f"| paper {stage} | " + " | ".join(_cell(row.get(m)) for m in TABLE2_COLUMNS) + " |")
        missing = {m: why for e in result["stages"].values() for m, why in e.get("missing", {}).items()}
        if missing:
            lines += ["", "Missing metrics (never reported as 0):", ""]
            lines += [f"- {m}: {why}" for m, why in missing.items()]
    return "\n".join(lines) + "\n"
