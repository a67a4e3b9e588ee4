"""One module per check, ``ds_<family>_<nnn>.py``, with its metadata in the ``.yaml`` beside
it. Modules whose name starts with ``_`` are helpers, not checks."""
