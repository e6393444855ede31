"""``python -m distdev.dap_adapter``: the Debug Adapter Protocol server, on stdio."""

from __future__ import annotations

import sys

from ._relay import main

sys.exit(main())
