"""The one error type for bad user input.

Everything a user can get wrong (a missing file, a wrong shape, NaN, a corrupt artifact, an
impossible configuration) raises :class:`InputError` with a message that names the file or
field and says what was expected. The CLI turns it into one line on stderr and exit status 2.
It subclasses ``ValueError`` so library callers can catch either.
"""


class InputError(ValueError):
    """Bad user input: the message names what is wrong and what was expected."""
