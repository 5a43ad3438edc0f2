"""``python -m tokenclean.cli ...`` runs the same command line as ``tokenclean ...``."""

from tokenclean.cli.main import main

main()
