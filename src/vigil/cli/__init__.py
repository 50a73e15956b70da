"""The ``vigil`` command line."""
