"""The one base class of expected failures: bad input or configuration, never a bug.

Stages and the CLI print such an error as one line (its message names the file, row or key and
the fix) instead of a traceback. It lives in its own module so that catching it imports nothing
else: a stage's DVC dependencies stay the code it really runs.
"""


class InputError(Exception):
    """Bad input or configuration; the message says what is wrong and how to fix it."""


def one_line(text: object) -> str:
    """A message as one line: a line break or other control character inside it (a user's file
    name, an argument) is shown escaped, so that the error stays the single line it is meant to be."""
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text).strip())
