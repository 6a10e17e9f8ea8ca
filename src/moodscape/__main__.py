"""``python -m moodscape`` runs the command line."""

from .cli import app

app()
