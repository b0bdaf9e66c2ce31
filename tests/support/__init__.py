"""Helpers shared by tests: real servers and real images built on the fly."""
