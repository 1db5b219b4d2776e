"""The ROI selection being edited (FSLeyes-like): atlas ROIs plus brush strokes, with undo/redo.

The selection lives in voxel space, because a synthetic pattern is a voxel vector. It is

    (voxels of the checked atlas ROIs, minus voxels cut by the eraser) + voxels painted in

where painting or erasing a vertex marks every voxel that vertex maps to, and the later edit of
a voxel wins. So erasing over an atlas ROI cuts those voxels out of the selection, and the cut
stays while the ROI is checked (or re-checked) until it is painted again, undone or cleared.

Undo/redo steps: one per brush stroke (``begin_stroke`` … ``end_stroke``), one per change of
the checked atlas ROIs, one per ``clear`` or ``replace``. Listeners registered with
``on_change`` are called with the selection after every change, including each dab of a stroke
(so a view can repaint while the user paints) and the end of a stroke (the undo history changed); a view that shows checkboxes should read
``atlas_rois`` in its listener, since undo can change them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from brainview.cortex.surface import Cortex
from brainview.errors import UserError

PAINTED, UNTOUCHED, ERASED = 1, 0, -1


@dataclass(frozen=True)
class _Step:
    """What one undoable edit changed: atlas names and the edited entries of both edit arrays."""

    atlas_before: tuple[str, ...]
    atlas_after: tuple[str, ...]
    voxel_ids: np.ndarray
    voxel_before: np.ndarray
    voxel_after: np.ndarray
    vertex_ids: np.ndarray
    vertex_before: np.ndarray
    vertex_after: np.ndarray


def _ids(ids, n: int, what: str) -> np.ndarray:
    """Integer ids in 0..n-1 as int64; anything else (text, 2**63, a nested list) is a ``UserError``."""
    try:
        array = np.asarray(ids, dtype=np.int64).ravel()
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"{what} ids must be integers in 0..{n - 1}") from None
    if array.size and (array.min() < 0 or array.max() >= n):
        raise UserError(f"{what} ids must lie in 0..{n - 1}")
    return array


class RoiSelection:
    """A set of selected voxels built from checked atlas ROIs and painted/erased vertices."""

    def __init__(self, cortex: Cortex, max_undo: int = 200):
        self.cortex = cortex
        self.max_undo = max_undo
        self._atlas: tuple[str, ...] = ()
        self._voxel_edit = np.zeros(cortex.n_voxels, dtype=np.int8)
        self._vertex_edit = np.zeros(cortex.n_vertices, dtype=np.int8)
        self._undo: list[_Step] = []
        self._redo: list[_Step] = []
        self._stroke_start: tuple[tuple[str, ...], np.ndarray, np.ndarray] | None = None
        self._listeners: list[Callable[[RoiSelection], None]] = []

    # -- listeners -------------------------------------------------------------------------------
    def on_change(self, callback: Callable[["RoiSelection"], None]) -> Callable[["RoiSelection"], None]:
        """Call ``callback(selection)`` after every change; returns the callback (usable as a decorator)."""
        self._listeners.append(callback)
        return callback

    def disconnect(self, callback: Callable[["RoiSelection"], None]) -> None:
        """Stop calling ``callback``; a view does this when it is closed or shown another selection."""
        if callback in self._listeners:
            self._listeners.remove(callback)

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback(self)

    # -- state -----------------------------------------------------------------------------------
    @property
    def atlas_rois(self) -> tuple[str, ...]:
        return self._atlas

    @property
    def in_stroke(self) -> bool:
        return self._stroke_start is not None

    def voxel_mask(self) -> np.ndarray:
        """Boolean (n_voxels,) mask of the selection."""
        mask = np.zeros(self.cortex.n_voxels, dtype=bool)
        for name in self._atlas:
            mask[self.cortex.rois[name]] = True
        mask &= self._voxel_edit != ERASED
        mask |= self._voxel_edit == PAINTED
        return mask

    def voxels(self) -> np.ndarray:
        """Sorted voxel ids of the selection."""
        return np.flatnonzero(self.voxel_mask())

    def painted_vertices(self) -> np.ndarray:
        """Global ids of the vertices painted in (and not erased since)."""
        return np.flatnonzero(self._vertex_edit == PAINTED)

    def erased_vertices(self) -> np.ndarray:
        """Global ids of the vertices erased (and not painted since)."""
        return np.flatnonzero(self._vertex_edit == ERASED)

    def is_empty(self) -> bool:
        return not self.voxel_mask().any()

    # -- edits -----------------------------------------------------------------------------------
    def set_atlas_rois(self, names: Iterable[str]) -> None:
        """Check exactly these atlas ROIs (one undo step; no-op when unchanged)."""
        names = tuple(dict.fromkeys(names))
        unknown = [n for n in names if n not in self.cortex.rois]
        if unknown:
            raise UserError(f"unknown ROI {unknown[0]!r}; this bundle has {sorted(self.cortex.rois)}")
        if names == self._atlas:
            return
        self._edit(lambda: setattr(self, "_atlas", names))

    def begin_stroke(self) -> None:
        """Start a brush stroke: every ``paint`` until ``end_stroke`` becomes one undo step."""
        if self.in_stroke:
            self.end_stroke()
        self._stroke_start = (self._atlas, self._voxel_edit.copy(), self._vertex_edit.copy())

    def paint(self, vertices, erase: bool = False) -> None:
        """Paint (or erase) global vertex ids and the voxels they map to; outside a stroke, one step of its own."""
        ids = np.asarray(vertices, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.cortex.n_vertices):
            raise IndexError(f"vertex ids must lie in 0..{self.cortex.n_vertices - 1}")
        value = ERASED if erase else PAINTED

        def mark():
            self._vertex_edit[ids] = value
            self._voxel_edit[self.cortex.vertices_to_voxels(ids)] = value
        if not self.in_stroke:
            self._edit(mark)
        elif ids.size:
            mark()
            self._notify()

    def end_stroke(self) -> None:
        """Finish the stroke; if it changed anything it becomes an undo step and listeners hear of it."""
        if self._stroke_start is None:
            return
        atlas, voxel_edit, vertex_edit = self._stroke_start
        self._stroke_start = None
        step = self._diff(atlas, voxel_edit, vertex_edit)
        if step is not None:
            self._push(step)
            self._notify()

    def clear(self) -> None:
        """Uncheck every atlas ROI and forget all painting and erasing (one undo step)."""
        def reset():
            self._atlas = ()
            self._voxel_edit[:] = UNTOUCHED
            self._vertex_edit[:] = UNTOUCHED
        self._edit(reset)

    def replace(self, voxels, painted_vertices=()) -> None:
        """Make the selection exactly ``voxels`` (e.g. a loaded ROI file), remembering which vertices were painted."""
        voxel_mask = self.cortex.voxel_mask(voxels)
        vertex_ids = np.asarray(painted_vertices, dtype=np.int64).ravel()
        if vertex_ids.size and (vertex_ids.min() < 0 or vertex_ids.max() >= self.cortex.n_vertices):
            raise UserError(f"vertex ids must lie in 0..{self.cortex.n_vertices - 1}")

        def load():
            self._atlas = ()
            self._voxel_edit[:] = np.where(voxel_mask, PAINTED, UNTOUCHED)
            self._vertex_edit[:] = UNTOUCHED
            self._vertex_edit[vertex_ids] = PAINTED
        self._edit(load)

    def edits(self) -> dict[str, list]:
        """The selection exactly, as plain lists (for a session file): checked ROIs and the voxels and
        vertices painted in or erased."""
        return {"rois": list(self._atlas),
                "painted_voxels": np.flatnonzero(self._voxel_edit == PAINTED).tolist(),
                "erased_voxels": np.flatnonzero(self._voxel_edit == ERASED).tolist(),
                "painted_vertices": self.painted_vertices().tolist(),
                "erased_vertices": self.erased_vertices().tolist()}

    def checked_edits(self, rois=(), painted_voxels=(), erased_voxels=(), painted_vertices=(), erased_vertices=()
                      ) -> tuple[tuple[str, ...], dict[str, np.ndarray], dict[str, np.ndarray]]:
        """Edits saved by :meth:`edits`, checked against this cortex without changing the selection:
        (ROI names, voxel masks, vertex ids); unknown ROIs or ids out of range raise ``UserError``."""
        names = tuple(dict.fromkeys(rois))
        unknown = [n for n in names if n not in self.cortex.rois]
        if unknown:
            raise UserError(f"unknown ROI {unknown[0]!r}; this bundle has {sorted(self.cortex.rois)}")
        voxels = {k: self.cortex.voxel_mask(_ids(v, self.cortex.n_voxels, "voxel"))
                  for k, v in (("painted", painted_voxels), ("erased", erased_voxels))}
        vertices = {k: _ids(v, self.cortex.n_vertices, "vertex")
                    for k, v in (("painted", painted_vertices), ("erased", erased_vertices))}
        return names, voxels, vertices

    def restore(self, rois=(), painted_voxels=(), erased_voxels=(), painted_vertices=(), erased_vertices=()) -> None:
        """Put back a selection saved by :meth:`edits` (one undo step); ids out of range raise ``UserError``."""
        names, voxels, vertices = self.checked_edits(rois, painted_voxels, erased_voxels, painted_vertices,
                                                     erased_vertices)

        def load():
            self._atlas = names
            self._voxel_edit[:] = np.where(voxels["painted"], PAINTED, np.where(voxels["erased"], ERASED, UNTOUCHED))
            self._vertex_edit[:] = UNTOUCHED
            self._vertex_edit[vertices["painted"]] = PAINTED
            self._vertex_edit[vertices["erased"]] = ERASED
        self._edit(load)

    def _edit(self, change: Callable[[], None]) -> None:
        """Apply a non-stroke change as one undo step and tell the listeners."""
        if self.in_stroke:
            self.end_stroke()
        before = (self._atlas, self._voxel_edit.copy(), self._vertex_edit.copy())
        change()
        step = self._diff(*before)
        if step is not None:
            self._push(step)
            self._notify()

    def _diff(self, atlas: tuple[str, ...], voxel_edit: np.ndarray, vertex_edit: np.ndarray) -> _Step | None:
        voxel_ids = np.flatnonzero(voxel_edit != self._voxel_edit)
        vertex_ids = np.flatnonzero(vertex_edit != self._vertex_edit)
        if atlas == self._atlas and voxel_ids.size == 0 and vertex_ids.size == 0:
            return None
        return _Step(atlas, self._atlas, voxel_ids, voxel_edit[voxel_ids], self._voxel_edit[voxel_ids],
                     vertex_ids, vertex_edit[vertex_ids], self._vertex_edit[vertex_ids])

    def _push(self, step: _Step | None) -> None:
        if step is None:
            return
        self._undo.append(step)
        del self._undo[:-self.max_undo]
        self._redo.clear()

    # -- history ---------------------------------------------------------------------------------
    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def undo(self) -> bool:
        """Revert the last step; False when there is nothing to undo."""
        if self.in_stroke:
            self.end_stroke()
        if not self._undo:
            return False
        step = self._undo.pop()
        self._apply(step.atlas_before, step.voxel_ids, step.voxel_before, step.vertex_ids, step.vertex_before)
        self._redo.append(step)
        self._notify()  # after the stacks moved: listeners read can_undo/can_redo
        return True

    def redo(self) -> bool:
        """Re-apply the last undone step; False when there is nothing to redo."""
        if not self._redo or self.in_stroke:
            return False
        step = self._redo.pop()
        self._apply(step.atlas_after, step.voxel_ids, step.voxel_after, step.vertex_ids, step.vertex_after)
        self._undo.append(step)
        self._notify()
        return True

    def _apply(self, atlas, voxel_ids, voxel_values, vertex_ids, vertex_values) -> None:
        self._atlas = atlas
        self._voxel_edit[voxel_ids] = voxel_values
        self._vertex_edit[vertex_ids] = vertex_values
