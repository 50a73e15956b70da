"""The local inference service: ``vigil serve-model`` puts one model behind an HTTP API.

Needs the ``serve`` extra (FastAPI, uvicorn, python-multipart, prometheus-client).
"""

from vigil.serve.app import create_app
from vigil.serve.decode import FORMATS, RequestRejected, decode_image
from vigil.serve.schema import ModelInfo, ServeSettings

__all__ = ["FORMATS", "ModelInfo", "RequestRejected", "ServeSettings", "create_app", "decode_image"]
