"""Identifiers the master hands out, and the rule every client-chosen id must follow.

Formats follow Mesos (`Master::newFrameworkId` and friends): the master id is a
random UUID; frameworks are `<master>-0000`, agents `<master>-S0`, offers
`<master>-O0`. Clients treat them as opaque strings.
"""

from __future__ import annotations

import uuid

__all__ = ["NAME_MAX", "IdGenerator", "validate_id"]

# Ids become directory names on agents (sandboxes), hence the file-name limit.
NAME_MAX = 255


class IdGenerator:
    """Counters for the ids of one master run."""

    def __init__(self, master_id: str | None = None) -> None:
        self.master_id = master_id or str(uuid.uuid4())
        self._next_framework = 0
        self._next_agent = 0
        self._next_offer = 0

    def framework_id(self) -> str:
        value = f"{self.master_id}-{self._next_framework:04d}"
        self._next_framework += 1
        return value

    def agent_id(self) -> str:
        value = f"{self.master_id}-S{self._next_agent}"
        self._next_agent += 1
        return value

    def offer_id(self) -> str:
        value = f"{self.master_id}-O{self._next_offer}"
        self._next_offer += 1
        return value


def validate_id(value: str) -> str | None:
    """Mesos' `common::validation::validateID`: the error, or None when valid."""
    if not value:
        return "ID must not be empty"
    if len(value) > NAME_MAX:
        return f"ID must not be greater than {NAME_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if any(_is_invalid_character(c) for c in value):
        return f"'{value}' contains invalid characters"
    return None


def _is_invalid_character(c: str) -> bool:
    # Control characters, and path separators (ids are mapped to directories).
    return ord(c) < 0x20 or ord(c) == 0x7F or c in "/\\"
