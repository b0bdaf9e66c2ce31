"""mesoslite: a cluster manager that speaks the Apache Mesos v1 HTTP APIs."""

__all__ = ["MESOS_VERSION", "__version__"]

__version__ = "0.1.0"

# The Mesos release whose wire behaviour we follow; clients parse it as dotted integers.
MESOS_VERSION = "1.12.0"
