"""The REST API: app factory, routes, request decoding, problem responses, middleware.

Importing this package is cheap; the model is loaded by the app's lifespan.
"""

from service.api.app import create_app

__all__ = ["create_app"]
