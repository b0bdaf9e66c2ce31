"""The allocator: hierarchical DRF over roles and frameworks, pure and incremental.

The master feeds it events (frameworks, agents, resources coming back, policy) and calls
`allocate(now)` to get offers; see `allocator.py` for the algorithm.
"""

from .allocation import Allocation, PassStats
from .allocator import Allocator, AllocatorError
from .config import AllocatorConfig
from .min_allocatable import DEFAULT_MIN_ALLOCATABLE, MinAllocatable, min_allocatable_by_role
from .quota import Quota
from .refusals import DEFAULT_REFUSE_SECONDS, MAX_REFUSE_SECONDS, refusal_duration_seconds

__all__ = [
    "DEFAULT_MIN_ALLOCATABLE",
    "DEFAULT_REFUSE_SECONDS",
    "MAX_REFUSE_SECONDS",
    "Allocation",
    "Allocator",
    "AllocatorConfig",
    "AllocatorError",
    "MinAllocatable",
    "PassStats",
    "Quota",
    "min_allocatable_by_role",
    "refusal_duration_seconds",
]
