"""The token audit: what each round kept, as statistics, samples, diffs and one HTML report."""
