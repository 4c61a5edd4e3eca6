"""The operator console: static files served at /ui by the service itself (no build step,
no CDN), with strict security headers, and `GET /` leading to it."""

from app.ui.routes import install_ui

__all__ = ["install_ui"]
