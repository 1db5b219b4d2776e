"""The Qt-free state the window shows: the :class:`~.session.Session` (a bundle, a trial, a stage, a
selection and what was decoded from them), opening bundles and loading models (:mod:`.loading`), the
language tools (:mod:`.language`), decoding across a study's subjects (:mod:`.study`), session files
(:mod:`.session_file`) and sessions without a window (:mod:`.headless`). Imports the analysis and the core,
never Qt and never the command line.
"""
