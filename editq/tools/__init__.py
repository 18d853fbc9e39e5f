"""The top floor: the `editq` command and the Python client of the HTTP API."""
