"""A mixin for components whose state *is* their configuration.

Translators and aligners are handed to ``datasets.map``: it hashes them for the cache
fingerprint and pickles them for ``num_proc`` workers. Pickling only the ``config`` dict (and
rebuilding from it) keeps the fingerprint stable before and after a model is loaded, and never
ships weights or subprocess handles between processes.
"""

from __future__ import annotations

from typing import Any


class Configured:
    """Subclasses define a ``config`` property whose keys are their ``__init__`` arguments."""

    config: dict[str, Any]

    def __getstate__(self) -> dict[str, Any]:
        return self.config

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(**state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.config.items())})"
