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


def matches(roi: str, caption: str) -> bool:
    return bool(KEYWORDS[roi] & set(re.findall(r"[a-z]+", caption.lower())))
