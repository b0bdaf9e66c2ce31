"""isolators."""
