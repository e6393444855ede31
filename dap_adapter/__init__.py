"""Debug Adapter Protocol server for distdev applications (see DESIGN §5).

``python -m distdev.dap_adapter`` relays DAP between the editor (on stdio) and debugpy's own
adapter (``python -m debugpy.adapter``, a child process), rewriting what distdev changes: frames
named by service and distdev's own hidden, function breakpoints by export, Step Back in a
replay. debugpy's adapter internals are no public API, so the relay talks to it only in DAP.

Three layers, as in every protocol component of distdev:

- wire: ``_wire`` (Content-Length framing over byte streams);
- dispatch, shaped like debugpy's own adapter (``adapter/components.py``, ``sessions.py``):
  ``_components`` (a component per channel, handlers named after their message, one decorator
  turning a failure into an error response), ``_client`` (the editor; ``serve``), ``_server``
  (debugpy's adapter), ``_session`` (their shared state, under one lock);
- engine, importing no protocol or channel code: ``_config`` (launch configurations),
  ``_engine`` (whose frames are the user's; the service tree read by ``distdev.rules``),
  ``_breakpoints`` (what debugpy is sent per file), ``_time_travel`` (the replay's timeline).

The debuggee side, run by debugpy's launcher: ``_runner`` (an application or a replay),
``_replay_loop`` (a replay that runs again when the debugger travels back), ``_pydevd``
(distdev's changes to pydevd, version-checked). ``_evaluate`` is the one channel between the
two sides: the relay's questions, asked as ``evaluate`` requests, and their typed answers.

Tried and dropped: one relay class owning both channels and every piece of state (four locks;
handlers blocking on the editor's thread but chaining callbacks on debugpy's, since that thread
also had to read the answers). Now every handler runs under the session's lock on its
component's handler thread and may wait; answers are taken on the reader threads.

No Python API: the package is run (``python -m``), so nothing is re-exported here.
"""
