"""Save and restore the window's whole state as a session file (File → Save session…, Open session…,
``brainview open SESSION.json``, a session file dropped on the window).

What is saved is listed in :mod:`brainview.state.session_file`; this module reads it from the widgets and
puts it back. A session whose bundle moved or changed opens with a dialog asking where it is now.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QByteArray, QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog, QMenu, QSplitter

from brainview.errors import UserError
from brainview.qt import dialogs
from brainview.state.session_file import (SELECTION_KEYS, SYNTHETIC, bundle_fingerprint, bundle_problem, load_session,
                                         save_session)

OVERLAY_STYLE_KEYS = ("cmap", "threshold", "vmin", "vmax", "symmetric")


def _encode(data: QByteArray) -> str:
    return bytes(data.toBase64()).decode("ascii")


def _known(section: dict, keys) -> dict:
    """The fields of a section this brainview knows (a newer file may hold more)."""
    return {k: v for k, v in section.items() if k in keys}


def _decode(text: str) -> QByteArray:
    return QByteArray.fromBase64(text.encode("ascii"))


class QtSessionIO(QObject):
    """Session files of one main window."""

    def __init__(self, window):
        super().__init__(window)
        self.window = window
        self.save_action = QAction("&Save session…", self, shortcut=QKeySequence.Save)
        self.save_action.triggered.connect(self.save_dialog)
        self.open_action = QAction("Open &session…", self, shortcut=QKeySequence("Ctrl+Shift+O"))
        self.open_action.triggered.connect(self.open_dialog)
        self._pending: tuple[str | Path, dict] | None = None  # a session waiting for its bundle
        self.restore_geometry = False  # the window keeps its size and place; docks, splitters and tabs come back
        window.bundle_loaded.connect(self._restore_pending)

    def add_to(self, menu: QMenu) -> None:
        menu.addActions([self.open_action, self.save_action])

    # ----------------------------------------------------------------- saving

    def capture(self) -> dict:
        """The window's state as the sections of a session file."""
        window, session = self.window, self.window.session
        view = window.cortex_view
        cortex = {} if view is None else {"surface": view.surface, "view": view.view, "camera": view.camera_state(),
                                          "brush_radius": view.brush_radius}
        style = {} if view is None else {key: view.overlay_style[key] for key in OVERLAY_STYLE_KEYS}
        return {
            "bundle": bundle_fingerprint(session.bundle.path), "trial": session.trial_id(), "stage": session.stage,
            "k": session.k, "selection": session.selection.edits(),
            "synthetic": dataclasses.asdict(session.synthetic), "cortex": cortex,
            "overlay": {"source": window.cortex_shows.source,
                        "follows_selection": window.cortex_shows.follows_selection, **style},
            "browser": self._browser_state(),
            "other_models": {"models": [{"name": m.name, "path": str(Path(m.path).resolve())}
                                        for m in session.other_models.models],
                             "pair": list(session.other_models.pair or []) or None},
            "interface": self._interface_state(),
            "window": {"geometry": _encode(window.saveGeometry()), "state": _encode(window.saveState()),
                       "splitters": {s.objectName(): _encode(s.saveState()) for s in window.findChildren(QSplitter)
                                     if s.objectName()}},
        }

    def _browser_state(self) -> dict:
        """The trial table's sort column (by name, as columns depend on the bundle's stages), order, filter."""
        browser = self.window.browser
        header = browser.table.horizontalHeader()
        column = header.sortIndicatorSection()
        columns = browser.model.columns
        return {"sort": list(columns[column]) if 0 <= column < len(columns) else None,
                "descending": header.sortIndicatorOrder() == Qt.DescendingOrder,
                "filter": browser.filter_edit.text()}

    def _interface_state(self) -> dict:
        """What else the user set in the panels: the score chosen, the phrases typed, the tabs and docks."""
        window = self.window
        language = window.language_panel
        return {"score": window.browser.chosen_score, "search_phrase": language.search_edit.text(),
                "concept_phrase": language.concept_edit.text(), "left_tab": window.left_tabs.currentIndex(),
                "language_tab": language.tabs.currentIndex(), "subjects_dock": window.subjects_dock.isVisible(),
                "overlays": window.overlay_layers.to_dict()}

    def _restore_interface(self, state: dict, overlay_source: str | None) -> None:
        window = self.window
        language = window.language_panel
        if isinstance(state.get("score"), str):
            window.browser.prefer_score(state["score"])
        for edit, key in ((language.search_edit, "search_phrase"), (language.concept_edit, "concept_phrase")):
            if isinstance(state.get(key), str):
                edit.setText(state[key])  # a search phrase runs as it is typed
        for tabs, key in ((window.left_tabs, "left_tab"), (language.tabs, "language_tab")):
            if isinstance(state.get(key), int) and 0 <= state[key] < tabs.count():
                tabs.setCurrentIndex(state[key])
        if isinstance(state.get("overlays"), dict):
            try:
                window.overlay_layers.restore(state["overlays"])
            except (UserError, TypeError) as exc:
                dialogs.show_error(window, "Part of the session could not be restored", str(exc))
            window.overlay_list.apply_all()
        if isinstance(state.get("subjects_dock"), bool):
            window.subjects_dock.setVisible(state["subjects_dock"])
        if overlay_source == "concept" and language.concept_edit.text().strip():
            language.localize()  # the map on the cortex when saved: computed again, then shown

    def _restore_browser(self, state: dict) -> None:
        browser = self.window.browser
        browser.filter_edit.setText(state.get("filter", ""))
        sort = state.get("sort")
        if isinstance(sort, list) and tuple(sort) in browser.model.columns:
            order = Qt.DescendingOrder if state.get("descending") else Qt.AscendingOrder
            browser.table.sortByColumn(browser.model.columns.index(tuple(sort)), order)

    def save(self, path: str | Path) -> Path:
        written = save_session(path, self.capture())
        self.window.remember(str(written))
        self.window.statusBar().showMessage(f"Saved session {written}", 5000)
        return written

    def save_dialog(self) -> None:
        if not self.window.session.has_bundle:
            dialogs.show_notice(self.window, "Nothing to save", "Open a bundle first.")
            return
        path, _ = QFileDialog.getSaveFileName(self.window, "Save session", "session.json", "brainview session (*.json)")
        if path:
            try:
                self.save(path if path.lower().endswith(".json") else path + ".json")
            except OSError as exc:
                dialogs.show_error(self.window, "Cannot save the session", f"{path}: {exc}")

    # ----------------------------------------------------------------- opening

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self.window, "Open session", "", "brainview session (*.json)")
        if path:
            self.open(path)

    def locate_bundle(self, problem: str) -> str | None:
        """Ask where the session's bundle is now (tests replace this)."""
        dialogs.show_notice(self.window, "Where is the bundle?", f"{problem}.\n\nChoose the bundle's folder.")
        return dialogs.choose_bundle(self.window)

    def open(self, path: str | Path) -> bool:
        """Open a session file: its bundle (asking for it if it moved or changed), then its state."""
        try:
            state = load_session(path)
        except UserError as exc:
            dialogs.show_error(self.window, "Cannot open the session", str(exc))
            return False
        recorded = state["bundle"]
        bundle_path = recorded["path"]
        problem = bundle_problem(recorded)
        while problem is not None:
            chosen = self.locate_bundle(problem)
            if not chosen:
                return False
            bundle_path, problem = chosen, bundle_problem(recorded, chosen)
        session = self.window.session
        if session.has_bundle and Path(session.bundle.path).resolve() == Path(bundle_path).resolve():
            restored = self.restore(state)
            if restored:
                self.window.remember(str(path))
            return restored
        else:
            self._pending = (path, state)
            self.window.open_bundle(bundle_path)
        return True

    def _restore_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            if self.restore(pending[1]):
                self.window.remember(str(pending[0]))  # after its bundle: the session is the most recent

    def fit_problem(self, state: dict) -> str | None:
        """Why ``state`` (already checked against the schema) does not fit the open bundle, or None:
        checked whole before :meth:`restore` changes anything."""
        session, view = self.window.session, self.window.cortex_view
        if state["trial"] not in [t["id"] for t in session.bundle.trials]:
            return f"the bundle has no trial {state['trial']!r}"
        for where, stage in (("stage", state["stage"]), ("synthetic stage", state["synthetic"].get("stage"))):
            if stage is not None and stage not in session.stages:
                return f"the bundle has no {stage} (the session's {where})"
        surface = state["cortex"].get("surface")
        if view is not None and surface is not None and surface not in session.cortex.surfaces:
            return f"the bundle has no {surface} surface"
        try:
            session.selection.checked_edits(**_known(state["selection"], SELECTION_KEYS))
        except UserError as exc:
            return f"its selection does not fit the bundle: {exc}"
        return None

    def restore(self, state: dict) -> bool:
        """Put the window in the saved state (the bundle is open), all of it or, when some of it does
        not fit the bundle, none of it with one dialog."""
        problem = self.fit_problem(state)
        if problem is not None:
            dialogs.show_error(self.window, "Cannot restore the session", f"{problem}; nothing was changed.")
            return False
        window, session = self.window, self.window.session
        ids = [t["id"] for t in session.bundle.trials]
        session.set_trial(ids.index(state["trial"]))
        session.set_stage(state["stage"])
        session.set_k(min(state["k"], max(session.n_trials, 1)))
        session.set_synthetic(**_known(state["synthetic"], SYNTHETIC))
        session.selection.restore(**_known(state["selection"], SELECTION_KEYS))
        view = window.cortex_view
        cortex, overlay = state["cortex"], state["overlay"]
        if view is not None:
            if "surface" in cortex:
                view.set_surface(cortex["surface"])
            if "view" in cortex:
                view.set_view(cortex["view"])
            if "brush_radius" in cortex:
                view.set_brush_radius(cortex["brush_radius"])
            view.update_overlay_style(**{k: overlay[k] for k in OVERLAY_STYLE_KEYS if k in overlay})
            view.set_camera_state(cortex.get("camera"))
        if overlay.get("source") in ("trial", "synthetic"):
            window.cortex_shows.restore(overlay["source"], overlay.get("follows_selection", False))
        others = state.get("other_models", {})  # optional: older files lack it
        for model in others.get("models", []):
            try:
                window.other_models.add_file(model["name"], model["path"])
            except UserError as exc:
                dialogs.show_error(window, "Model captions could not be restored", str(exc))
        if others.get("pair") and all(n in session.other_models.names for n in others["pair"]):
            session.other_models.set_pair(*others["pair"])
        if "browser" in state:  # optional: older files lack it
            self._restore_browser(state["browser"])
        if isinstance(state.get("interface"), dict):  # optional: older files lack it
            self._restore_interface(state["interface"], overlay.get("source"))
        layout = state["window"]
        if layout.get("geometry") and self.restore_geometry:
            window.restoreGeometry(_decode(layout["geometry"]))
        if layout.get("state"):
            window.restoreState(_decode(layout["state"]))
        splitters = {s.objectName(): s for s in window.findChildren(QSplitter)}
        for name, saved in layout.get("splitters", {}).items():
            if name in splitters:
                splitters[name].restoreState(_decode(saved))
        window.statusBar().showMessage("Session restored", 5000)
        return True
