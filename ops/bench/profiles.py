"""Hand-made profiles quoted in BENCHMARKS.md (filled in below)."""

WORKER = ""
API = ""
