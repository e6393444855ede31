"""The Ray engine (``distdev deploy OUT --engine ray``): each service a named, detached Ray actor
that restores itself from its state journal, then serves.

What Ray does here: it places the service processes on the cluster's nodes (``SPREAD``),
restarts a dead one (``max_restarts=-1``), and names them so ``down`` finds them again. What
distdev keeps doing itself, with the local engine's own pieces: restoring from the journal
(``_local.restore``: torn tails and unfinished calls cut aside), durable journaling with group
commit (``_local.durable``), answering re-sent calls from the journal (``DedupTable``, keyed by
the caller's call-out ids), and the transport between services.

Calls between services travel over the local engine's authenticated socket transport
(``_local.server``/``_local.client``), each actor listening on its node's address, not through
Ray actor handles. That was chosen by measurement (``benchmarks/bench_ray.py``; figures in
docs/ray-engine.md): two hops through actor handles cost five to six times the same hops over
sockets, and the sockets already carry the call ids, chains (re-entry) and HMAC
authentication. A restarted
actor listens on a new port; callers follow it through ``STATE/<id>/ray-actor.json``
(``layout.AddressBook``), which every node reads on the shared state path.

Modules: ``cluster`` (importing Ray, its settings, a local instance), ``head`` (the process that
keeps a local instance alive), ``layout`` (the state folder's Ray files), ``actor`` (one service
as an actor), ``deploy`` (deploy, down, status, and the CLI's client side).
"""
