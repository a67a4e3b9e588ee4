"""``python -m dsguard``: the same command line as the ``dsguard`` script, for a venv whose
scripts are not on ``PATH``. The program name is given so help and errors say ``dsguard``."""

from dsguard.cli import app

app(prog_name="dsguard")
