"""The web playground: train live in the browser, compare settings side by side, share and export.

``trainlab serve`` runs ``create_app`` under uvicorn; see README, "The playground".
"""

from trainlab.web.app import create_app

__all__ = ["create_app"]
