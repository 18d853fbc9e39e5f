"""The editq simulator: an OpenAI-compatible image-edit server for local runs, tests and load
tests. It applies visible, deterministic Pillow effects; it is not a generative model."""
