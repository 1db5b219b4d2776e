"""Where things are in an NSD download (DESIGN.md §6) and in the pipeline's work folder.

``NsdLayout`` names the files of the Natural Scenes Dataset exactly as the public release lays
them out, so the pipeline runs on an unmodified ``NSD_ROOT``; the tests build a tiny tree with
the same paths. ``WorkDir`` names what each step writes, so later steps find earlier results.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from brainview.errors import UserError

BETA_FORMATS = ("nii.gz", "hdf5")

#: NSD's ROI volumes (func1pt8mm/roi/) with their label values (DESIGN.md §6).
ROI_LABELS: dict[str, dict[int, str]] = {
    "prf-visualrois": {1: "V1v", 2: "V1d", 3: "V2v", 4: "V2d", 5: "V3v", 6: "V3d", 7: "hV4"},
    "floc-faces": {1: "OFA", 2: "FFA-1", 3: "FFA-2", 4: "mTL-faces", 5: "aTL-faces"},
    "floc-bodies": {1: "EBA", 2: "FBA-1", 3: "FBA-2", 4: "mTL-bodies"},
    "floc-places": {1: "OPA", 2: "PPA", 3: "RSC"},
    "floc-words": {1: "OWFA", 2: "VWFA-1", 3: "VWFA-2", 4: "mfs-words", 5: "mTL-words"},
}

#: The paper's Table 3 rows: early areas merged over their ventral and dorsal parts,
#: category-selective volumes taken whole.
MERGED_ROIS: dict[str, tuple[str, tuple[int, ...]]] = {
    "V1": ("prf-visualrois", (1, 2)),
    "V2": ("prf-visualrois", (3, 4)),
    "V3": ("prf-visualrois", (5, 6)),
    "hV4": ("prf-visualrois", (7,)),
    "floc-faces": ("floc-faces", (1, 2, 3, 4, 5)),
    "floc-bodies": ("floc-bodies", (1, 2, 3, 4)),
    "floc-places": ("floc-places", (1, 2, 3)),
    "floc-words": ("floc-words", (1, 2, 3, 4, 5)),
}
TABLE3_ROIS = tuple(MERGED_ROIS)

HEMISPHERES = ("lh", "rh")
SURFACE_LAYERS = (1, 2, 3)


@dataclass(frozen=True)
class NsdLayout:
    """Paths inside an NSD download for one subject."""

    root: Path
    subject: int

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root).expanduser())
        if not 1 <= int(self.subject) <= 8:
            raise UserError(f"NSD has subjects 1 to 8, not {self.subject}")

    @property
    def subj(self) -> str:
        return f"subj{int(self.subject):02d}"

    @property
    def betas_dir(self) -> Path:
        return self.root / "nsddata_betas" / "ppdata" / self.subj / "func1pt8mm" / "betas_fithrf_GLMdenoise_RR"

    def betas(self, session: int, fmt: str) -> Path:
        return self.betas_dir / f"betas_session{int(session):02d}.{fmt}"

    @property
    def roi_dir(self) -> Path:
        return self.root / "nsddata" / "ppdata" / self.subj / "func1pt8mm" / "roi"

    @property
    def nsdgeneral(self) -> Path:
        return self.roi_dir / "nsdgeneral.nii.gz"

    def roi_volume(self, name: str) -> Path:
        return self.roi_dir / f"{name}.nii.gz"

    def roi_ctab(self, name: str) -> Path:
        return self.root / "nsddata" / "freesurfer" / self.subj / "label" / f"{name}.mgz.ctab"

    @property
    def expdesign(self) -> Path:
        return self.root / "nsddata" / "experiments" / "nsd" / "nsd_expdesign.mat"

    @property
    def stim_info(self) -> Path:
        return self.root / "nsddata" / "experiments" / "nsd" / "nsd_stim_info_merged.csv"

    @property
    def stimuli(self) -> Path:
        return self.root / "nsddata_stimuli" / "stimuli" / "nsd" / "nsd_stimuli.hdf5"

    @property
    def coco_annotations(self) -> Path:
        return self.root / "nsddata_stimuli" / "stimuli" / "nsd" / "annotations"

    def surface(self, hemi: str, kind: str) -> Path:
        """``kind``: inflated, pial or sulc (FreeSurfer files of the subject's native surface)."""
        return self.root / "nsddata" / "freesurfer" / self.subj / "surf" / f"{hemi}.{kind}"

    def layer_transform(self, hemi: str, layer: int) -> Path:
        return self.root / "nsddata" / "ppdata" / self.subj / "transforms" / f"{hemi}.func1pt8-to-layerB{int(layer)}.mgz"

    def require(self, *paths: Path) -> None:
        """Fail with one message listing every missing file."""
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise UserError(f"not found in the NSD tree at {self.root}: " + ", ".join(missing))


class WorkDir:
    """The pipeline's work folder: one file name per result, a settings log per step."""

    def __init__(self, path: str | Path):
        self.path = Path(path).expanduser()

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def log_path(self, step: str) -> Path:
        return self.path / "logs" / f"{step}.json"

    def write_log(self, step: str, settings: dict[str, Any], **results: Any) -> Path:
        """The step's settings and results as JSON, so every number can be traced to how it was made."""
        path = self.log_path(step)
        path.parent.mkdir(parents=True, exist_ok=True)
        entry = {"step": step, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "settings": settings, **results}
        write_json(path, entry)
        return path

    def read_log(self, step: str) -> dict[str, Any]:
        path = self.log_path(step)
        if not path.is_file():
            raise UserError(f"{self.path} has no finished '{step}' step: run `python -m training.nsd {step}` first")
        return json.loads(path.read_text(encoding="utf-8"))

    def require(self, step: str, *names: str) -> None:
        missing = [n for n in names if not (self.path / n).exists()]
        if missing:
            raise UserError(f"{self.path} lacks {', '.join(missing)}: run `python -m training.nsd {step}` first")


def write_json(path: Path, value: Any) -> None:
    """Write JSON atomically (a crash never leaves half a file that a rerun would trust)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_npy(path: Path, array) -> None:
    """``np.save`` through a temporary name, so a present file is always a complete one."""
    import numpy as np

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, array)
    tmp.replace(path)


def progress(message: str) -> None:
    """Progress lines on stderr, flushed, so a long run shows where it is."""
    import sys

    print(f"[nsd] {message}", file=sys.stderr, flush=True)
