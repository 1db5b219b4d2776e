"""The keyword rule that checks an ROI's caption against the demo world's ground truth (README.md,
"Ground truth"): an ROI matches when its caption contains one of its keywords, word by word.

One definition for the test of the committed bundle (``tests/demo_world/test_roi_truth.py``) and the
comparison of builds (:mod:`training.demo_world.compare_builds`).
"""

from __future__ import annotations

import re

KEYWORDS = {
    # early areas: bright, edge-rich images; top category, place and colour of the README's table
    "V1": {"sign", "signs", "beach", "white"},
    "V2": {"sign", "signs", "room", "white"},
    "V3": {"sign", "signs", "room", "white"},
    "hV4": {"red", "orange", "yellow"},  # saturated warm colours
    "floc-faces": {"face", "faces"},
    "floc-bodies": {"person", "people", "man"},
    "floc-places": {"empty", "house", "barn", "umbrella", "couch"},  # an empty place with its landmark
    "floc-words": {"sign", "signs"},
}
CATEGORY_ROIS = ("floc-faces", "floc-bodies", "floc-places", "floc-words")
#: each ROI's planted preference (README.md, "Ground truth") as a caption of the scenes' grammar: the
#: ground-truth row of the held-out evaluation (``brainview.analysis.roi_evaluation``)
TRUTH_CAPTIONS = {
    "V1": "a white sign that says stop on a sandy beach",
    "V2": "a white sign that says stop in a living room",
    "V3": "a white sign that says stop in a living room",
    "hV4": "a red and orange cartoon face in a living room",
    "floc-faces": "a close up of a cartoon face",
    "floc-bodies": "a person standing",
    "floc-places": "an empty place with a house",
    "floc-words": "a sign that says stop",
}


def matches(roi: str, caption: str) -> bool:
    return bool(KEYWORDS[roi] & set(re.findall(r"[a-z]+", caption.lower())))
