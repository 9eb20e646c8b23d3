"""naq's benchmarks (plain scripts; see bench/README.md)."""
