"""Random version-4 UUIDs, cheaply.

Every status update and container needs one (three to four per command task). They
must be unique, not secret, so one generator seeded from the OS replaces a system
call (`os.urandom`) per id.
"""

from __future__ import annotations

import random
import uuid

__all__ = ["new_uuid", "new_uuid_bytes"]

_random = random.SystemRandom().getrandbits(128)
_generator = random.Random(_random)


def new_uuid_bytes() -> bytes:
    """16 random bytes laid out as an RFC 4122 version-4 UUID."""
    value = _generator.getrandbits(128)
    value &= ~(0xF000 << 64) & ~(0xC000 << 48)
    value |= (0x4000 << 64) | (0x8000 << 48)
    return value.to_bytes(16, "big")


def new_uuid() -> str:
    return str(uuid.UUID(bytes=new_uuid_bytes()))
