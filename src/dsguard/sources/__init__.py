"""Source readers: one module per input shape of the evidence bundle.

Each reader stages one file's rows for the evidence store (see ``base.py`` for the contract);
``dsguard.bundle`` decides which reader reads which file.
"""
