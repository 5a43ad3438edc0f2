"""One module per DVC stage: a typed ``run(params)`` and a thin ``main()`` for ``dvc.yaml``."""
