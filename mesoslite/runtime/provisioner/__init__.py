"""Image provisioner: Docker/OCI images from registries or archives to container root
filesystems, without a Docker daemon.

The containerizer uses `Provisioner` (provision/destroy/recover) and `apply_image_config`;
`mesoslite image` uses the same Provisioner's pull/import and its `ImageStore`.
"""

from mesoslite.runtime.provisioner.credentials import Credential, RegistryCredentials
from mesoslite.runtime.provisioner.errors import (
    AuthenticationError,
    DigestMismatchError,
    ImageNotFoundError,
    ImageReferenceError,
    LayerUnpackError,
    ManifestError,
    PathEscapeError,
    ProvisionerError,
    RegistryError,
    UnsupportedImageError,
)
from mesoslite.runtime.provisioner.image_command import (
    ImageCommandError,
    ImageLaunch,
    apply_image_config,
)
from mesoslite.runtime.provisioner.image_config import ImageConfig
from mesoslite.runtime.provisioner.image_record import ImageRecord
from mesoslite.runtime.provisioner.image_store import ImageInUseError, ImageStore, PruneResult
from mesoslite.runtime.provisioner.platform import Platform
from mesoslite.runtime.provisioner.progress import LayerPhase, LayerProgress, ProgressCallback
from mesoslite.runtime.provisioner.provisioner import Provisioner, ProvisionInfo
from mesoslite.runtime.provisioner.reference import ImageReference
from mesoslite.runtime.provisioner.registry_client import RegistryOptions
from mesoslite.runtime.provisioner.rootfs_backend import BackendName

__all__ = [
    "AuthenticationError",
    "BackendName",
    "Credential",
    "DigestMismatchError",
    "ImageCommandError",
    "ImageConfig",
    "ImageInUseError",
    "ImageLaunch",
    "ImageNotFoundError",
    "ImageRecord",
    "ImageReference",
    "ImageReferenceError",
    "ImageStore",
    "LayerPhase",
    "LayerProgress",
    "LayerUnpackError",
    "ManifestError",
    "PathEscapeError",
    "Platform",
    "ProgressCallback",
    "ProvisionInfo",
    "Provisioner",
    "ProvisionerError",
    "PruneResult",
    "RegistryCredentials",
    "RegistryError",
    "RegistryOptions",
    "UnsupportedImageError",
    "apply_image_config",
]
