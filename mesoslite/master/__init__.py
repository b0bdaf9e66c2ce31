"""The Mesos master: scheduler and operator APIs, framework/agent/task/offer bookkeeping,
agent health and failover. `mesoslite.master.master.Master` is the entry point; the
allocator lives in `mesoslite.master.allocator`."""

__all__: list[str] = []
