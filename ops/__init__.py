"""Running editq: launcher helpers, Docker and Kubernetes files, benchmarks."""
