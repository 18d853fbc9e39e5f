"""editq: a self-hosted, asynchronous, cost-aware image-edit job service."""

__version__ = "0.1.0"
