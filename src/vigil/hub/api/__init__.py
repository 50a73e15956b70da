"""The hub's REST API under ``/api/``: one module of routes per group of endpoints.

``routes.api_router()`` puts them together; ``schemas`` holds the typed request and response
shapes, ``errors`` the JSON errors and body limits, ``params`` what many endpoints share.
"""
