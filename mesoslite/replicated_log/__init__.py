"""replicated_log."""
