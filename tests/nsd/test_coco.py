"""COCO object categories for the NSD export: the largest object's category per image, absent files skipped."""

from __future__ import annotations

import json

from training.nsd.coco import read_coco_categories


def test_largest_object_names_the_image(tmp_path):
    categories = [{"id": 1, "name": "person", "supercategory": "person"},
                  {"id": 18, "name": "dog", "supercategory": "animal"},
                  {"id": 3, "name": "car", "supercategory": "vehicle"}]
    annotations = [{"image_id": 10, "category_id": 1, "area": 50.0}, {"image_id": 10, "category_id": 18, "area": 900.0},
                   {"image_id": 10, "category_id": 1, "area": 70.0}, {"image_id": 11, "category_id": 3, "area": 5.0},
                   {"image_id": 99, "category_id": 18, "area": 1.0}]
    (tmp_path / "instances_val2017.json").write_text(json.dumps(
        {"images": [], "categories": categories, "annotations": annotations}))
    labels = read_coco_categories(tmp_path, {"val2017", "train2017"}, {10, 11, 12})
    assert labels == {10: {"category": "dog", "supercategory": "animal", "categories": ["dog", "person"]},
                      11: {"category": "car", "supercategory": "vehicle", "categories": ["car"]}}
