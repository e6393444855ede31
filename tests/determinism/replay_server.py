"""A replaying process for many journals: the differential generator's other side.

Started (by ``test_generated.py``) in a fresh interpreter under another ``PYTHONHASHSEED``, it
re-executes itself under the seed the journals were recorded with, exactly as ``distdev replay``
does (``distdev.cli.main``), then answers one request per line on stdin — a JSON object
``{"journals": {service id: path}}`` — with one line of JSON on its answer stream: for each
service, ``{"state": ...}`` (what ``distdev replay --json`` would print) or ``{"error": type,
"message": ...}``. Service code's own output cannot mix into the answers: the answer stream is
a private copy of stdout, and stdout itself goes to stderr.

Run as a script (``python -P replay_server.py SEED``): it imports nothing but distdev.
"""

from __future__ import annotations

import json
import os
import sys

_MARK = "DISTDEV_REPLAY_SERVER_REEXECUTED"


def main() -> None:
    wanted = sys.argv[1]
    started_under = os.environ.get("PYTHONHASHSEED", "")
    if wanted != "random" and started_under != wanted and not os.environ.get(_MARK):
        env = dict(os.environ, PYTHONHASHSEED=wanted, **{_MARK: started_under or "random"})
        os.execve(sys.executable, [sys.executable, "-P", os.path.abspath(__file__), wanted], env)
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    import distdev

    answers.write(json.dumps({"started_under": os.environ.get(_MARK, started_under),
                              "replaying_under": os.environ.get("PYTHONHASHSEED")}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        results: dict[str, object] = {}
        for service_id, path in request["journals"].items():
            try:
                restored = distdev.replay(path)
                results[service_id] = {"state": json.loads(json.dumps(restored.state()))}
            except BaseException as exc:  # a replay's failure is the answer, whatever it is
                if isinstance(exc, KeyboardInterrupt):
                    raise
                results[service_id] = {"error": type(exc).__name__, "message": str(exc)}
        answers.write(json.dumps({"results": results}) + "\n")


if __name__ == "__main__":
    main()
