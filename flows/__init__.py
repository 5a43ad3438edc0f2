"""Prefect flows that drive the DVC pipeline (scheduling, retries, artifacts).

Flows call DVC, which owns staleness and caching; DVC runs ``tasks/``; tasks use
``tokenclean``. Nothing here is imported by the stages.
"""
