"""COCO object categories of the NSD images, for zero-shot labels with a truth (``brainview classify --truth``).

COCO's ``instances_{split}.json`` lists the objects of each image with their category and area.
Each test trial of the bundle gets ``"coco": {"category": …, "supercategory": …, "categories": […]}``:
the category and supercategory of the object covering the largest area (one label per image, as a
zero-shot accuracy needs) and every category present. Splits whose file is absent are skipped;
images without objects get no field.
"""

from __future__ import annotations

import json
from pathlib import Path


def read_coco_categories(folder: str | Path, splits: set[str], wanted: set[int]) -> dict[int, dict]:
    """cocoId → its labels, from the ``instances_{split}.json`` files present in ``folder``."""
    labels: dict[int, dict] = {}
    for split in sorted(splits):
        path = Path(folder) / f"instances_{split}.json"
        if not path.is_file():
            continue
        data = json.loads(path.read_text(encoding="utf-8"))
        names = {int(c["id"]): (str(c["name"]), str(c.get("supercategory", ""))) for c in data["categories"]}
        largest: dict[int, tuple[float, int]] = {}
        present: dict[int, set[str]] = {}
        for ann in data["annotations"]:
            image = int(ann["image_id"])
            if image not in wanted or int(ann["category_id"]) not in names:
                continue
            category = int(ann["category_id"])
            present.setdefault(image, set()).add(names[category][0])
            if float(ann.get("area", 0.0)) > largest.get(image, (-1.0, 0))[0]:
                largest[image] = (float(ann.get("area", 0.0)), category)
        for image, (_, category) in largest.items():
            name, supercategory = names[category]
            labels[image] = {"category": name, "supercategory": supercategory, "categories": sorted(present[image])}
    return labels
