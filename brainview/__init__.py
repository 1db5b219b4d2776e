"""brainview: explore fMRI-to-language decoding models.

The floors, top to bottom (each imports only those below it): ``cli`` (the command line), ``qt``
(every widget), ``state`` (what the window shows, Qt-free), ``analysis`` (what the command line, the
state and the GUI share), ``decoding`` | ``cortex``, ``bundle``, and the basics ``events``, ``errors``,
``paths``. Nothing below ``qt`` imports Qt.
"""

__version__ = "0.1.0"
