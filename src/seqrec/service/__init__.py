"""The HTTP service: a FastAPI app over a bundle, with a SQLite event store that updates recommendations."""

from seqrec.service.app import create_app

__all__ = ["create_app"]
