"""The version of custseg, written into every summary and model."""

__version__ = "0.1.0"
