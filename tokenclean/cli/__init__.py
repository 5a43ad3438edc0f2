"""The ``tokenclean`` command line: ``tokenclean audit show|stats|diff`` (see ``cli.main``)."""


def described(doc: str) -> str:
    """A module docstring as a command's ``--help`` description: reST double backticks read as single ones."""
    return doc.replace("``", "`")
