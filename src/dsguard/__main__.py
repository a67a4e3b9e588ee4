"""``python -m dsguard``: the same command line as the ``dsguard`` script.

Useful where the script's directory is not on ``PATH`` (a venv not activated, a locked-down
jump host), and what ``spark-submit`` style launchers expect.
"""

from dsguard.cli import app

app(prog_name="dsguard")
