"""The Mesos v1 wire: everything between an HTTP request and a protobuf message.

json_codec  JSON <-> protobuf with Mesos' (stout's) rules, not proto3 JSON
recordio    RecordIO framing of event streams
media       Accept negotiation, Content-Type checks, encode/decode by media type
http        HttpError, plain responses, read_call, EventStream (chunked event streams)
routing     Router: libprocess path rules for one listener
legacy      the hand-written legacy JSON shapes (/state, /tasks, ...)
server      uvicorn settings that keep event streams chunked for every client

Import from the submodules; this package re-exports nothing so that importing one
piece does not pull in starlette or the generated protobuf modules.
"""

__all__: list[str] = []
