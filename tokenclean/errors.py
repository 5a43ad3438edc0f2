"""Errors a user fixes: each message says what is wrong, where, and what to do. Stages exit 2 on them."""


class DataError(ValueError):
    """Bad input data; the message names the file, line or record, field, and what to do."""
