"""The web UI of ``openriff ui``.

:mod:`.studio` turns requests into files (no web); :mod:`.app` is the Gradio page over it
(gradio is imported only there).
"""
