"""The Ray engine (``distdev deploy OUT --engine ray``): each service a named, detached Ray actor
that restores itself from its state journal, then serves.

What Ray does here: it places the service processes on the cluster's nodes (``SPREAD``),
restarts a dead one (``max_restarts=-1``), and names them so ``down`` finds them again. What
distdev keeps doing itself, with the local engine's own pieces: restoring from the journal
(``engines._restore``: torn tails and unfinished calls cut aside), durable journaling with group
commit (``engines._durable``), answering re-sent calls from the journal (``DedupTable``, keyed by
the caller's call-out ids), and the transport between services.

Calls between services travel over the local engine's authenticated socket transport
(``engines._server``/``engines._client``), each actor listening on its node's address, not through
Ray actor handles. That was chosen by measurement (``benchmarks/bench_ray.py``; figures in
docs/ray-engine.md): two hops through actor handles cost five to six times the same hops over
sockets, and the sockets already carry the call ids, chains (re-entry) and HMAC
authentication. A restarted
actor listens on a new port; callers follow it through ``STATE/<id>/ray-actor.json``
(``layout.AddressBook``), which every node reads on the shared state path.

Modules: ``_cluster`` (importing Ray, its settings, a local instance), ``_head`` (the process
that keeps a local instance alive), ``_layout`` (the state folder's Ray files), ``_actor`` (one
service as an actor), ``_deploy`` (deploy, down, status, and the CLI's client side),
``_engine`` (``RayEngine``, what the command line drives). Nothing here imports Ray at import
time: without Ray installed, every entry point says how to install it.
"""

from __future__ import annotations

from ._engine import RayEngine as RayEngine

__all__ = ["RayEngine"]
