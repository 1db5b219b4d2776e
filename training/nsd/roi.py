"""Step 6: the paper's Table 3, a caption decoded from a synthetic pattern of each ROI.

The pattern is the paper's (DESIGN.md §4), built by ``brainview.decoding.synthetic.roi_tokens``,
the function the app's ROI panel uses: 1 on the ROI's voxels, per-token unit norm, × 11, plus
the bias; captioned with no prompt. Rows are V1–V3 (ventral and dorsal parts merged), hV4
(the paper's "V4") and the four floc volumes taken whole. The paper used stage 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from brainview.errors import UserError
from training.nsd.data import GENERATION, load_adapter, load_brain_model
from training.nsd.layout import TABLE3_ROIS, WorkDir, progress, read_json, write_json

#: The paper's Table 3 (stage 1), by subject, under this pipeline's ROI names.
PAPER_TABLE3 = {
    1: {"V1": "a black and white sign", "V2": "a man is standing next to a small animal",
        "V3": "a white and blue building", "hV4": "a group of people standing on a field with a ball",
        "floc-words": 'a sign that says "the park"', "floc-bodies": "a man in a blue shirt",
        "floc-faces": "a man sitting on a chair with a dog",
        "floc-places": "a woman sitting in a chair in front of a building"},
    2: {"V1": "a man and a woman are sitting on a bench", "V2": "a close up of a large bowl with food on it",
        "V3": "a close up of a bathroom with a white and yellow striped bed",
        "hV4": "a small group of people standing on a white playing field",
        "floc-words": 'a sign that says "the black and white"', "floc-bodies": "a man holding a surfboard in a field",
        "floc-faces": "a woman sitting on a chair with a cat sitting on her lap",
        "floc-places": "a room with a pool table and a couch"},
    5: {"V1": "a black and white cow", "V2": "a group of people sitting on a street",
        "V3": "a man holding a black and white striped shirt",
        "hV4": "a group of people have on helmets on top of a skateboard",
        "floc-words": "two brown colored cartoon animals", "floc-bodies": "a man and a giraffe standing on a field",
        "floc-faces": "a woman sitting on a couch with a cat",
        "floc-places": "a bathroom with a window and a table with a clock"},
    7: {"V1": "a man and a woman are walking on a street", "V2": "a table with a bunch of food on it",
        "V3": "a bathroom with a sink and a few black and white chairs",
        "hV4": "a group of white and yellow colored baseballs",
        "floc-words": "an object with the words inside stands under the blue sky",
        "floc-bodies": "a man holding a surfboard", "floc-faces": "a man and his very furry friend",
        "floc-places": "a bathroom with a sink and a toilet sitting on a wooden floor"},
}


def roi_table(work: str | Path, *, device: str = "auto", batch_size: int = 16, stage: str = "stage1",
              scale: float = 11.0, rois=TABLE3_ROIS) -> dict:
    """Run step 6 into ``roi_table.json`` and ``roi_table.md``; skipped when done with the same settings."""
    from brainview.decoding.synthetic import roi_tokens

    work = WorkDir(work)
    settings = {"stage": stage, "scale": scale, "rois": list(rois), "generation": GENERATION}
    if (work / "roi_table.json").exists() and work.log_path("roi").is_file() \
            and work.read_log("roi")["settings"] == settings:
        progress("roi: complete, nothing to do")
        return read_json(work / "roi_table.json")
    model = load_brain_model(work, stages=(stage,))
    if stage not in model.stages:
        raise UserError(f"{work.path} has no fitted {stage}: run the {'fit' if stage == 'stage1' else 'contrast'} step")
    voxel_sets = read_json(work / "rois.json")
    present = [name for name in rois if name in voxel_sets]
    missing = [name for name in rois if name not in voxel_sets]
    tokens = np.stack([roi_tokens(model, np.asarray(voxel_sets[n]["voxels"]), scale=scale, stage=stage)
                       for n in present])
    captions = load_adapter(work, device).caption(tokens, batch_size=batch_size, **GENERATION)
    subject = work.read_log("prepare")["settings"]["subject"]
    result = {"subject": subject, "stage": stage, "scale": scale,
              "rois": {n: {"caption": c, "n_voxels": len(voxel_sets[n]["voxels"]), "group": voxel_sets[n]["group"]}
                       for n, c in zip(present, captions)},
              "missing": missing}
    write_json(work / "roi_table.json", result)
    paper = PAPER_TABLE3.get(subject, {})
    lines = [f"# Table 3, subj{subject:02d}: captions of synthetic ROI patterns ({stage}, scale {scale:g})", "",
             "| ROI | voxels | caption | paper |", "|---|---|---|---|"]
    lines += [f"| {n} | {e['n_voxels']} | {e['caption']} | {paper.get(n, '–')} |" for n, e in result["rois"].items()]
    lines += [f"| {n} | 0 | (no voxels in nsdgeneral) | {paper.get(n, '–')} |" for n in missing]
    (work / "roi_table.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    work.write_log("roi", settings, device=device)
    progress("roi: " + "; ".join(f"{n}: {e['caption']}" for n, e in result["rois"].items()))
    return result
