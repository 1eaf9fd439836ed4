"""What export reports when it cannot go on, and the exit codes of `keras-mlp-export` (pure Python: no TensorFlow)."""
from __future__ import annotations

import numbers

EXIT_OK, EXIT_REJECTED, EXIT_BAD_INPUT = 0, 1, 2
"""0: every file passed its gate; 1: a file was rejected (moved under rejected/ with its report); 2: bad input."""


class ExportError(ValueError):
    """Bad input or a model that cannot be exported as asked; the message names the problem and the fix."""


def positive_int(value, what: str) -> int:
    """`value` as an int > 0, else `ExportError` naming `what`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ExportError(f"`{what}` must be a positive integer, got {value!r}.")
    return int(value)
