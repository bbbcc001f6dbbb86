"""The error a donor sees when their file is refused: what is wrong and where."""


class FormatError(ValueError):
    """A file that is not a supported genomic format, or breaks its format's rules."""
