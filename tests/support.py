"""Helpers shared by the test modules."""

from __future__ import annotations

import os

TYPEGUARD_RUN = bool(os.environ.get("OAUTH2_STORE_TYPEGUARD"))
"""True in `make pytest-typeguard`, where oauth2_store's annotations are checked at run time."""


def raised_for(error: type[Exception]) -> tuple[type[Exception], ...]:
    """The exceptions a test accepts where the package raises ``error`` for a wrong argument.

    In the typeguard run an annotation check may fire before the package's own check; the
    conftest makes it raise TypeError (naming the argument), which is accepted too.
    """
    return (error, TypeError) if TYPEGUARD_RUN else (error,)
