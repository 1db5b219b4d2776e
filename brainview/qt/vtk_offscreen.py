"""A VTK render window that works under Qt's ``offscreen`` platform (DESIGN.md §9).

The stock ``QVTKRenderWindowInteractor`` hands Qt's window id to VTK with ``SetWindowInfo``.
Under ``QT_QPA_PLATFORM=offscreen`` that id is no X window, and VTK fails. An EGL render window
that ignores the id and renders off screen works; under a real display (or Xvfb) the normal
window is used.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtGui import QGuiApplication
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor
from vtkmodules.vtkRenderingCore import vtkRenderWindow
from vtkmodules.vtkRenderingOpenGL2 import vtkEGLRenderWindow

OFFSCREEN_PLATFORMS = ("offscreen", "minimal")


class OffscreenEGLRenderWindow(vtkEGLRenderWindow):
    """EGL window rendering off screen; Qt's window id is meaningless to it, so it is ignored."""

    def __init__(self):
        super().__init__()
        self.SetOffScreenRendering(1)

    def SetWindowInfo(self, info):  # noqa: N802 (VTK's name)
        """Ignore Qt's window id: there is no native window to draw into."""


def qt_is_offscreen() -> bool:
    return QGuiApplication.platformName() in OFFSCREEN_PLATFORMS


def make_render_window() -> vtkRenderWindow:
    """The render window a ``QVTKRenderWindowInteractor`` should use on the current Qt platform."""
    return OffscreenEGLRenderWindow() if qt_is_offscreen() else vtkRenderWindow()


class QtVTKInteractor(QVTKRenderWindowInteractor):
    """VTK's Qt interactor with the pixel ratio of its own window.

    The stock widget takes the device pixel ratio of the screen under the mouse cursor, for the
    render window's size and for every event position; on a window that spans (or was dragged
    between) screens of different DPI that misplaces picks and blurs the image. The widget's own
    ``devicePixelRatioF`` is the ratio Qt renders this window with.
    """

    #: called instead of rendering inside a paint event, when set (a view that coalesces its renders)
    paint_requested: Callable[[], None] | None = None

    def _getPixelRatio(self) -> float:  # noqa: N802 (VTK's name)
        return self.devicePixelRatioF()

    def paintEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        """The stock widget renders in every paint event, however many come in a turn, and at once,
        ahead of the widgets painted with it; with a hook set, the render is left to its owner."""
        if self.paint_requested is None:
            super().paintEvent(event)
        else:
            self.paint_requested()


def make_offscreen_window() -> vtkRenderWindow:
    """A render window that draws into an off-screen buffer of any size (figures): EGL under Qt's
    offscreen platform, the platform's own window with off-screen rendering otherwise."""
    if qt_is_offscreen():
        return OffscreenEGLRenderWindow()
    window = vtkRenderWindow()
    window.SetOffScreenRendering(1)
    return window
