"""Unit tests of the image provisioner."""
