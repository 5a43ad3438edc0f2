"""Evaluation of trained models: held-out loss and generation, lm-eval tasks, method comparison."""
