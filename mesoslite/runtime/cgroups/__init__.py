"""cgroups: layout detection (v1, hybrid, v2) and a manager per version."""

from mesoslite.runtime.cgroups.layout import (
    DEFAULT_CGROUP_ROOT,
    CgroupLayout,
    CgroupMode,
    detect_cgroup_layout,
)
from mesoslite.runtime.cgroups.manager import CgroupManager, manager_for_layout
from mesoslite.runtime.cgroups.v1 import CgroupsV1Manager
from mesoslite.runtime.cgroups.v2 import CgroupsV2Manager

__all__ = [
    "DEFAULT_CGROUP_ROOT",
    "CgroupLayout",
    "CgroupManager",
    "CgroupMode",
    "CgroupsV1Manager",
    "CgroupsV2Manager",
    "detect_cgroup_layout",
    "manager_for_layout",
]
