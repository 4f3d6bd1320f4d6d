"""The operator UI and HTTP API: Litestar app factory and the UI service."""

from reconciler.api.app import create_app
from reconciler.api.config import UISettings

__all__ = ["UISettings", "create_app"]
