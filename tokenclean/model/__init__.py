"""Models: loading, checkpoints, kernels, batching, the training loop, crash recovery and data-parallel processes."""
