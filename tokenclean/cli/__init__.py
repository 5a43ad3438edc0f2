"""The ``tokenclean`` command line: ``tokenclean audit show|stats|diff`` (see ``cli.main``)."""
