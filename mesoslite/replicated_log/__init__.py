"""The I/O shell around the Raft core (`mesoslite.raft`): durable storage, the registry
state machine, the peer transport and the cluster's TLS material.

    durable_storage   DurableStorage: the core's Storage over WAL + snapshot files;
                      `await persist(...)` before sending a Ready's messages (group commit)
    wal, segment      the write-ahead log: CRC-framed records, torn-tail repair, rotation
    snapshot_store    snapshot files, written atomically
    registry          the registry state machine applied from committed entries
    message_codec     raft messages <-> bytes for the wire
    peer_transport    raft messages over HTTPS (mutual TLS), batched per peer
    tls, join_token   the cluster CA, node certificates, SSL contexts; join tokens

Modules are imported one by one (nothing is re-exported here), so that a node that does
not need TLS does not pay for loading `cryptography`.
"""

__all__: list[str] = []
