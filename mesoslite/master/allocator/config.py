"""Allocator settings (the master's `--min_allocatable_resources`, `--filter_gpu_resources`)."""

from __future__ import annotations

from dataclasses import dataclass

from .min_allocatable import DEFAULT_MIN_ALLOCATABLE, MinAllocatable

__all__ = ["AllocatorConfig"]


@dataclass(frozen=True, slots=True)
class AllocatorConfig:
    #: Chunks smaller than every alternative here are not offered (default cpus:0.01|mem:32).
    min_allocatable: MinAllocatable = DEFAULT_MIN_ALLOCATABLE
    #: Agents with GPUs are offered only to frameworks with the GPU_RESOURCES capability.
    filter_gpu_resources: bool = True
