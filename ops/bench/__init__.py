"""`make bench`: editq's throughput, fairness and overhead against the simulator, each beside a
baseline measured in the same run. Writes BENCHMARKS.md."""
