"""The one exception type for bad user data, so CLIs can print it without a traceback."""


class DataError(ValueError):
    """A dataset file, image, box or landmark array is not what was expected.

    The message always names the offending input (file path, field or argument)
    and says what was expected instead.
    """
