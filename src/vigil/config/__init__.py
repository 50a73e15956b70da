"""Configuration: pydantic models read from YAML, with errors that point at the line."""

from vigil.config.base import ConfigModel, describe_validation_error, load_config

__all__ = ["ConfigModel", "describe_validation_error", "load_config"]
