"""Publication figures: exact pixel size, the colour bar's numbers are the overlay's range, the flatmap,
transparency, the trial panel, and an overlay kind plugged in from outside (as concept maps will be)."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from brainview.analysis.figures import Overlay, figure_size, overlay_kinds, register_overlay
from brainview.cli import main
from brainview.errors import UserError
from brainview.paths import demo_bundle_path

DEMO = str(demo_bundle_path())


def svg_texts(path) -> list[str]:
    return [t.strip() for t in re.findall(r"<text[^>]*>([^<]*)", path.read_text())]


def test_png_has_the_requested_pixel_size(app_bundle, tmp_path):
    out = tmp_path / "cortex.png"
    assert main(["figure", str(app_bundle.path), "--width", "900", "--height", "560", "--out", str(out)]) == 0
    assert Image.open(out).size == (900, 560)
    assert main(["figure", str(app_bundle.path), "--scale", "0.5", "--out", str(out)]) == 0
    assert Image.open(out).size == (800, 500)


def test_colour_bar_numbers_are_the_overlay_range(app_bundle, tmp_path):
    from brainview.state.session import Session, open_for_browsing

    out = tmp_path / "cortex.svg"
    trial_id = app_bundle.trials[4]["id"]
    assert main(["figure", str(app_bundle.path), "--trial", trial_id, "--out", str(out)]) == 0
    session = Session()
    session.set_loaded(open_for_browsing(app_bundle.path))
    values = session.vertex_values(session.pattern(4))
    top = float(np.nanmax(np.abs(values)))
    texts = svg_texts(out)
    assert f"{top:.3g}" in texts and f"{-top:.3g}" in texts and "0" in texts
    assert f"fMRI pattern, trial {trial_id}" in texts
    assert "ROI outlines" in texts and {"V1", "V2", "FFA-1"} <= set(texts)


def test_synthetic_overlay_and_only_the_named_rois(app_bundle, tmp_path):
    out = tmp_path / "roi.svg"
    assert main(["figure", str(app_bundle.path), "--rois", "V1", "--overlay", "synthetic", "--out", str(out)]) == 0
    texts = svg_texts(out)
    assert "V1" in texts and "V2" not in texts and any(t.startswith("synthetic ROI pattern") for t in texts)


def test_flatmap_figure_at_three_times_screen_size(tmp_path):
    out = tmp_path / "flat.png"
    assert main(["figure", DEMO, "--surface", "flat", "--scale", "3", "--rois", "V1,floc-faces",
                 "--overlay", "synthetic", "--out", str(out)]) == 0
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (3000, 4800, 3)
    cortex = image[: int(0.8 * 3000)]
    assert (np.abs(cortex.astype(int) - 255).sum(axis=2) > 30).mean() > 0.2  # the flatmap fills the area


def test_render_is_made_at_the_requested_size(qapp):
    """The cortex is rendered at each size (finer outlines at 2x), not a resized grab."""
    from brainview.qt.cortex_view import QtCortexView
    from brainview.qt.figure_export import render_cortex
    from brainview.state.headless import headless_session

    session = headless_session(DEMO, captions=False)
    view = QtCortexView()
    try:
        view.set_cortex(session.cortex)
        view.set_surface("flat")
        view.set_overlay(session.vertex_values(session.pattern()))
        small, large = render_cortex(view, 400, 250), render_cortex(view, 800, 500)
        assert small.shape == (250, 400, 4) and large.shape == (500, 800, 4)
        drawn_small = (small[..., :3] != 255).any(axis=2).mean()
        drawn_large = (large[..., :3] != 255).any(axis=2).mean()
        assert abs(drawn_small - drawn_large) < 0.03  # the same framing at both sizes
        upscaled = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
        assert (upscaled != large).any(axis=2).mean() > 0.02  # new detail, not repeated pixels
        clear = render_cortex(view, 400, 250, transparent=True)
        assert clear[0, 0, 3] == 0 and clear[..., 3].max() == 255
    finally:
        view.shutdown()
        view.deleteLater()


def test_transparent_png_and_pdf(app_bundle, tmp_path):
    out = tmp_path / "clear.png"
    assert main(["figure", str(app_bundle.path), "--width", "400", "--height", "300", "--transparent",
                 "--out", str(out)]) == 0
    image = Image.open(out)
    assert image.mode == "RGBA" and image.getpixel((0, 0))[3] == 0
    pdf = tmp_path / "cortex.pdf"
    assert main(["figure", str(app_bundle.path), "--out", str(pdf)]) == 0
    assert pdf.read_bytes().startswith(b"%PDF")


def test_trial_panel_figure(app_bundle, tmp_path):
    out = tmp_path / "trial.svg"
    assert main(["figure", str(app_bundle.path), "--what", "trial", "--trial", app_bundle.trials[2]["id"],
                 "--out", str(out)]) == 0
    text = " ".join(svg_texts(out))
    assert app_bundle.captions[2][0] in text and "Decoded, stage 2" in text and "true image ranked" in text


def test_an_overlay_kind_plugs_in(app_bundle, tmp_path, monkeypatch):
    """A later overlay (``concept:PHRASE``) is one register_overlay call: the CLI takes it as it is."""
    seen = []

    def concept(session, phrase):
        seen.append(phrase)
        return Overlay(np.linspace(-2, 2, session.cortex.n_vertices), f"concept map: {phrase}")

    from brainview.analysis import figures

    monkeypatch.setattr(figures, "_OVERLAYS", dict(figures._OVERLAYS))
    register_overlay("concept", concept, "a phrase's concept map")
    assert "concept" in overlay_kinds()
    out = tmp_path / "concept.svg"
    assert main(["figure", str(app_bundle.path), "--overlay", "concept:a red car", "--out", str(out)]) == 0
    assert seen == ["a red car"] and "concept map: a red car" in svg_texts(out) and "2" in svg_texts(out)


@pytest.mark.parametrize("argv, message", [
    (["--overlay", "nope"], "unknown overlay"),
    (["--surface", "flat"], "no flat surface"),
    (["--width", "100"], "both --width and --height"),
    (["--rois", "XYZ"], "unknown ROI"),
    (["--overlay", "synthetic"], "needs a selection"),
])
def test_figure_user_errors(app_bundle, tmp_path, capsys, argv, message):
    assert main(["figure", str(app_bundle.path), *argv, "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_figure_size_rules():
    assert figure_size(None, None, 3, (1600, 1000)) == (4800, 3000)
    assert figure_size(640, 480, None, (1600, 1000)) == (640, 480)
    with pytest.raises(UserError):
        figure_size(640, 480, 2, (1600, 1000))


def test_figure_size_is_bounded_by_the_memory_it_needs(app_bundle, tmp_path, capsys, monkeypatch):
    """16384 x 16384 passed 6.2 GB; it is refused before anything renders, with the estimate and the limit."""
    from brainview.analysis import figures

    with pytest.raises(UserError, match=r"16384x16384 figure needs about 6\.0 GiB .* than the 3 GiB limit"):
        figure_size(16384, 16384, None, (1600, 1000))
    assert figure_size(8000, 8000, None, (1600, 1000)) == (8000, 8000)  # a poster still fits
    rendered = []
    monkeypatch.setattr("brainview.qt.figure_export.render_cortex", lambda *a, **k: rendered.append(1))
    assert main(["figure", str(app_bundle.path), "--scale", "10", "--out", str(tmp_path / "f.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "GiB" in err and not rendered and not list(tmp_path.iterdir())
    assert figures.figure_memory(64, 64) < figures.MAX_FIGURE_BYTES


@pytest.mark.parametrize("out, message", [
    ("{tmp}/folder.png", "is a folder"), ("/proc/self/f.png", "system folder"), ("/dev/null.png", "system folder"),
    ("{tmp}/" + "x" * 300 + ".png", "longer than"), ("{tmp}/missing/f.png", "does not exist"),
])
def test_figure_paths_are_checked_before_rendering(app_bundle, tmp_path, capsys, monkeypatch, out, message):
    (tmp_path / "folder.png").mkdir()
    rendered = []
    monkeypatch.setattr("brainview.qt.figure_export.render_cortex", lambda *a, **k: rendered.append(1))
    assert main(["figure", str(app_bundle.path), "--out", out.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and not rendered
    assert not os.path.exists("/dev/null.png")


def test_tiny_figures_and_tex_titles(app_bundle, tmp_path):
    """A 64-px figure is drawn; a title with "$" is plain text, not TeX; the file appears whole."""
    out = tmp_path / "tiny.png"
    assert main(["figure", str(app_bundle.path), "--width", "64", "--height", "64", "--out", str(out)]) == 0
    assert out.stat().st_size > 0
    svg = tmp_path / "title.svg"
    title = r"$\frac{a}{$ costs $5 ^_^"
    assert main(["figure", str(app_bundle.path), "--width", "400", "--height", "300", "--title", title,
                 "--out", str(svg)]) == 0
    assert title in svg_texts(svg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.png", "title.svg"]  # no temporary files left


def test_the_export_dialog_refuses_a_size_too_large(qtbot, recorded_dialogs):
    from brainview.qt.figure_export import QtFigureDialog

    dialog = QtFigureDialog((1000, 800))
    qtbot.addWidget(dialog)
    dialog.width_spin.setValue(16384)
    dialog.height_spin.setValue(16384)
    assert "6.00 GiB" in dialog.memory.text()
    dialog.accept()
    assert dialog.result() != QtFigureDialog.Accepted and "3 GiB limit" in recorded_dialogs[0][2]
    dialog.height_spin.setValue(4000)
    dialog.accept()
    assert dialog.result() == QtFigureDialog.Accepted
