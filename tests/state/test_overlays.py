from __future__ import annotations

import pytest

from brainview.errors import UserError
from brainview.state.overlays import DEFAULTS, OverlayLayers


def test_each_layer_keeps_its_own_settings():
    layers = OverlayLayers()
    layers.update("trial", threshold=1.0, cmap="viridis")
    assert layers.style("concept") == DEFAULTS["concept"]
    assert layers.style("trial").threshold == 1.0 and layers.style("trial").cmap == "viridis"
    assert layers.style("selection").opacity == 0.6


def test_bad_settings_are_user_errors():
    layers = OverlayLayers()
    for change, message in (({"opacity": 1.5}, "opacity"), ({"cmap": "nope"}, "colour map"),
                            ({"threshold": -1.0}, "threshold"), ({"colour": 1}, "unknown overlay setting")):
        with pytest.raises(UserError, match=message):
            layers.update("trial", **change)
    with pytest.raises(UserError, match="unknown overlay"):
        layers.style("brain")
    assert layers.style("trial") == DEFAULTS["trial"]


def test_restore_round_trips_and_keeps_defaults_for_what_is_missing():
    layers = OverlayLayers()
    layers.update("concept", threshold=0.3, visible=False)
    again = OverlayLayers()
    again.restore({**layers.to_dict(), "unknown": {"visible": True}, "trial": {"opacity": 0.5, "odd": 1}})
    assert again.style("concept") == layers.style("concept")
    assert again.style("trial").opacity == 0.5 and again.style("trial").cmap == "RdBu_r"
    with pytest.raises(UserError):
        again.restore({"trial": {"opacity": 3.0}})
