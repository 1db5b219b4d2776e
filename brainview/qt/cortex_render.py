"""When, and at which detail, the cortex view renders.

Rendering 2 × 227k vertices under software OpenGL takes about a second. When the full-detail frames
are slow (the median of the last three against :data:`FRAME_BUDGET_MS`: measured, so a GPU keeps
full detail throughout), the view draws each hemisphere's coarse copy (:mod:`brainview.cortex.lod`,
built once per surface in a worker) while the camera moves, a stroke is drawn or the colours
change, and goes back to full detail once nothing has changed for :data:`REST_MS` (and nobody holds
it back: the main window does while live decoding runs, so the caption is not stuck behind a
second of VTK; the first frame of such a hold waits up to :data:`HELD_RENDER_MS` for the retrievals).
Renders are coalesced: any number of requests (paint events of the VTK widget included) in one
event-loop turn render once.
Before a slow full-detail frame, the widgets waiting to be repainted are painted, so what arrived
meanwhile (retrievals, a caption) is on screen before the GUI thread goes into VTK.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, QThreadPool, QTimer
from vtkmodules.vtkRenderingCore import vtkRenderWindow

from brainview.qt.cortex_scene import HemiScene
from brainview.qt.workers import QtWorkers

FRAME_BUDGET_MS = 50.0  # a full-detail frame slower than this: draw the coarse copy while things change
REST_MS = 400  # full detail again once nothing changed for this long
HELD_RENDER_MS = 250  # while held (a live decode's retrievals are due), a slow view's next frame waits this long
LOD_VERTICES = 6_000  # per hemisphere (2 × 6k: ~60 ms in software GL); meshes under twice this stay full


class QtRenderScheduler(QObject):
    """Renders ``render_window`` (holding the ``scenes()``) once per event-loop turn, at the detail it can afford."""

    def __init__(self, render_window: vtkRenderWindow, scenes: Callable[[], dict[str, HemiScene]],
                 parent: QObject | None = None):
        super().__init__(parent)
        self._rw = render_window
        self._scenes = scenes
        #: None: decide by the measured frame time; True/False: always/never use the coarse copies
        self.force_slow: bool | None = None
        self.frames = 0  # renders so far (for tests and benchmarks)
        self.lod_vertices = LOD_VERTICES
        self._full_ms: deque[float] = deque(maxlen=3)
        self._coarse = False  # wanted: coarse copies (where built) instead of full detail
        self._moving = False
        self._held = False
        self._held_since = 0.0
        self._closed = False
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self._render_due)
        self.rest_timer = QTimer(self, singleShot=True, interval=REST_MS)  # public: tests shorten it
        self.rest_timer.timeout.connect(self._rested)
        pool = QThreadPool(self)
        pool.setMaxThreadCount(1)
        self._workers = QtWorkers(self, pool=pool)  # its own pool: closing waits for a build, not for decoding
        self._building: set[tuple[int, str]] = set()

    # -- what decides ----------------------------------------------------------------------------
    @property
    def full_frame_ms(self) -> float | None:
        """Median time of the last full-detail frames (None before the first)."""
        return float(np.median(self._full_ms)) if self._full_ms else None

    @property
    def slow(self) -> bool:
        """Whether full-detail frames are too slow to follow the mouse (or forced to count as such)."""
        if self.force_slow is not None:
            return self.force_slow
        return self.full_frame_ms is not None and self.full_frame_ms > FRAME_BUDGET_MS

    @property
    def coarse(self) -> bool:
        """Whether a coarse copy is drawn now (in place of some hemisphere's full mesh)."""
        return any(scene.showing_coarse for scene in self._scenes().values())

    # -- what asks -------------------------------------------------------------------------------
    def request(self) -> None:
        """Something changed: render once control returns to the event loop, coarse when frames are slow."""
        if self._closed:
            return
        if self.slow:
            self._show_coarse(True)
            self._rest_later()
        self._schedule()

    def begin_motion(self) -> None:
        """The camera starts to move or a stroke starts: coarse while it lasts, when frames are slow."""
        self._moving = True
        self.rest_timer.stop()
        if self.slow:
            self._show_coarse(True)

    def end_motion(self) -> None:
        self._moving = False
        self._rest_later()

    def hold_full_detail(self, held: bool) -> None:
        """Keep drawing coarse copies while ``held`` (something is about to show and must not wait); where
        frames are slow, the first frame after the hold begins also waits up to :data:`HELD_RENDER_MS`,
        so that retrievals arriving meanwhile paint at once instead of after it."""
        if held and not self._held:
            self._held_since = time.perf_counter()
        self._held = bool(held)
        if not held:
            self._rest_later()

    def repaint(self) -> None:
        """Render again as it is (an expose or resize), coalesced with any other request."""
        if not self._closed:
            self._schedule()

    def render_now(self) -> None:
        """Render at full detail at once (figures, screenshots, tests)."""
        self.rest_timer.stop()
        self._show_coarse(False)
        self._render()

    def shutdown(self) -> None:
        self._closed = True
        self._timer.stop()
        self.rest_timer.stop()
        self._workers.shutdown()

    # -- what happens ----------------------------------------------------------------------------
    def _rest_later(self) -> None:
        if self._coarse and not self._closed:
            self.rest_timer.start()

    def _rested(self) -> None:
        if self._moving or self._held or self._closed:
            return  # end_motion / hold_full_detail(False) start the rest again
        self._show_coarse(False)
        self._schedule()

    def _show_coarse(self, coarse: bool) -> None:
        self._coarse = coarse
        for scene in self._scenes().values():
            scene.show_coarse(coarse)
        if coarse:
            self._build_missing()

    def _schedule(self) -> None:
        if not self._timer.isActive():  # a pending frame stays where it is: one render per turn, never later
            self._timer.start(0)

    def _render_due(self) -> None:
        remaining = self._held_since + HELD_RENDER_MS / 1000 - time.perf_counter()
        if self._held and self.slow and remaining > 0:
            self._timer.start(int(1000 * remaining) + 1)  # the retrievals may come first
            return
        self._render()

    def _render(self) -> None:
        self._timer.stop()
        if self._closed:
            return
        full = not self.coarse
        if full and self.slow:
            # a second in VTK is coming: paint what waits for it first (new retrievals, a caption)
            QCoreApplication.sendPostedEvents(None, QEvent.Type.UpdateRequest)
        begin = time.perf_counter()
        self._rw.Render()
        self.frames += 1
        if full:
            self._full_ms.append(1000 * (time.perf_counter() - begin))
            if self.slow:
                self._build_missing()

    def _build_missing(self) -> None:
        """Start building the coarse copy of every big hemisphere that lacks one for its surface."""
        for scene in self._scenes().values():
            key = (id(scene), scene.surface)
            if (scene.coarse is not None or key in self._building
                    or scene.mesh.n_vertices < 2 * self.lod_vertices):
                continue
            self._building.add(key)
            self._workers.start(scene.mesh.lod, scene.surface, self.lod_vertices,
                                on_returned=lambda coarse, scene=scene, key=key: self._built(scene, key, coarse),
                                on_finished=lambda key=key: self._building.discard(key))

    def _built(self, scene: HemiScene, key: tuple[int, str], coarse) -> None:
        if self._closed or scene not in self._scenes().values() or scene.surface != key[1] or scene.coarse is not None:
            return  # the view moved on (another cortex or surface) while it was built
        scene.set_coarse(coarse)
        scene.show_coarse(self._coarse)
        if self._coarse:
            self._schedule()
