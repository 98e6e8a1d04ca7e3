"""The one base class of expected failures: bad input or configuration, never a bug.

Stages and the CLI print such an error as one line (its message names the file, row or key and
the fix) instead of a traceback. It lives in its own module so that catching it imports nothing
else: a stage's DVC dependencies stay the code it really runs.
"""


class InputError(Exception):
    """Bad input or configuration; the message says what is wrong and how to fix it."""
