"""The membrane: what crosses between services, and how.

Values cross by copy, in their *wire form* (``_values``): CBOR-ready data in which every type
CBOR would blur carries a semantic tag; the receiving side rebuilds fresh objects, so two
services never share a mutable object, in one process or many. A service is reached only
through a proxy (``_proxy``), which exposes its exports and nothing else. Exceptions cross as
``ErrorInfo`` (``_failures``). Values from and to JSON, for HTTP and the command line, follow
one rule (``_json``). A service's state, as tools print and compare it, is its module's
globals in a canonical JSON-ready form (``_snapshot``).

Layer: the lowest of the runtime; imports only ``distdev.errors`` and ``distdev.rules``.
"""

from __future__ import annotations

from ._digest import Digest as Digest
from ._digest import global_hash as global_hash
from ._digest import state_digest as state_digest
from ._failures import ErrorInfo as ErrorInfo
from ._failures import error_info as error_info
from ._failures import rebuild_exception as rebuild_exception
from ._json import call_arguments as call_arguments
from ._json import decode_arguments as decode_arguments
from ._json import is_json_call as is_json_call
from ._json import json_call as json_call
from ._json import json_ready as json_ready
from ._json import value_to_json as value_to_json
from ._json import wire_to_json as wire_to_json
from ._proxy import Router as Router
from ._proxy import ServiceProxy as ServiceProxy
from ._proxy import export_of as export_of
from ._proxy import export_reference as export_reference
from ._proxy import holder_of as holder_of
from ._proxy import is_export as is_export
from ._proxy import make_proxy as make_proxy
from ._proxy import target_of as target_of
from ._snapshot import is_state as is_state
from ._snapshot import service_state as service_state
from ._snapshot import to_json as to_json
from ._values import NotPlain as NotPlain
from ._values import Receiver as Receiver
from ._values import args_to_wire as args_to_wire
from ._values import can_cross as can_cross
from ._values import dumps as dumps
from ._values import from_wire as from_wire
from ._values import plain_call_copy as plain_call_copy
from ._values import plain_copy as plain_copy
from ._values import to_wire as to_wire
from ._values import wire_repr as wire_repr
from ._values import with_the_outside as with_the_outside

__all__ = [
    "Digest", "state_digest", "global_hash", "ErrorInfo", "error_info", "rebuild_exception",
    "call_arguments", "decode_arguments", "is_json_call", "json_call", "json_ready",
    "value_to_json", "wire_to_json", "Router", "ServiceProxy", "export_of", "export_reference",
    "holder_of", "is_export", "make_proxy", "target_of", "is_state", "service_state", "to_json",
    "Receiver", "args_to_wire", "can_cross", "dumps", "from_wire", "to_wire", "wire_repr",
    "with_the_outside", "NotPlain", "plain_copy", "plain_call_copy",
]
