"""Storage errors.

StorageError             something in Redis or S3 went wrong
└── StorageUnavailable   the service cannot be reached or timed out; retry later
"""

from __future__ import annotations


class StorageError(Exception):
    """Redis or S3 refused or lost an operation."""


class StorageUnavailable(StorageError):
    """Redis or S3 cannot be reached right now."""
