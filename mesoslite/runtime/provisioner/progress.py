"""Progress reports for pulls and imports: one event per layer step, for progress bars."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["LayerPhase", "LayerProgress", "ProgressCallback"]


class LayerPhase(StrEnum):
    # Already in the store: nothing to fetch.
    CACHED = "cached"
    DOWNLOADING = "downloading"
    UNPACKING = "unpacking"
    DONE = "done"


@dataclass(frozen=True)
class LayerProgress:
    # The layer's blob digest as the manifest names it ("sha256:...").
    layer: str
    phase: LayerPhase
    # Bytes of the (compressed) blob handled so far in this phase, and the blob's size.
    done_bytes: int
    total_bytes: int


# Called on the event loop's thread; it must return quickly (draw, don't block).
ProgressCallback = Callable[[LayerProgress], None]
