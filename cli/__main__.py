"""``python -m cli ...`` runs the same command line as ``tokenclean ...``."""

from cli.main import main

main()
