"""Speed benchmarks of the project's scorer and trainer against the published recipe's way (python -m bench.speed)."""
