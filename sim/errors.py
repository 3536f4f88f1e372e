"""The one exception type the command line turns into a clean message and exit code 2."""


class WenzhengError(ValueError):
    """A problem with what the user gave us (a file, a key, a value, a result store).

    The message names the file, the key and what is allowed, and is printed as is — never a traceback.
    Every package raises subclasses of this for user mistakes.
    """
