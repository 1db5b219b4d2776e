"""brainview: explore fMRI-to-language decoding models.

The core (``bundle``, ``decoding``, ``cortex``, ``session``) never imports Qt; every widget
lives in ``brainview.qt``.
"""

__version__ = "0.1.0"
