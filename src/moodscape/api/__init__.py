"""Stage 6: the web app and JSON API over a run's serving bundle (``moodscape serve``)."""

from .app import create_app

__all__ = ["create_app"]
