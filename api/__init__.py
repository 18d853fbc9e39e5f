"""The thin HTTP API: authenticate, validate, store, admit, answer."""
