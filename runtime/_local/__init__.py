"""The local engine: every service in its own process on this machine.

``supervisor`` starts and restarts service processes (``host``), which restore themselves from
their state journals (``restore``) and serve calls over authenticated Unix or loopback TCP
sockets (``server``, ``client``, ``wire``), replying only once a call's events are durable
(``durable``). ``deployment`` is the file through which they, and the CLI, find each other.
"""
