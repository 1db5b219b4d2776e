"""The decoding bundle: format version 1 (DESIGN.md §3). numpy, scipy and safetensors only."""

from brainview.bundle.files import BundleError
from brainview.bundle.reader import Bundle, open_bundle
from brainview.bundle.writer import make_manifest, write_bundle

__all__ = ["Bundle", "BundleError", "open_bundle", "make_manifest", "write_bundle"]
