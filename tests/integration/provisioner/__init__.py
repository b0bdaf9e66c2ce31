"""Integration tests of the image provisioner: a real registry, real images, real mounts."""
