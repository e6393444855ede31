from collections.abc import Callable
from typing import Any

class ExportCallBase:
    _proxy: Any
    _export: str
    _send: Callable[[tuple[Any, ...], dict[str, Any]], Any]
    def __init__(self, proxy: Any, export: str,
                 send: Callable[[tuple[Any, ...], dict[str, Any]], Any]) -> None: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
