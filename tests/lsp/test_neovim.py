"""A second, independent LSP client: headless neovim (Debian's ``neovim``, 0.7.2) starts
``python -m distdev.lsp``, opens the shop's orders.py, runs go-to-definition on
``_billing.charge`` with its own handler (the one a user's ``gd`` mapping calls), and reports
where the cursor landed.

neovim 0.7 has no ``vim.lsp.start``: the script uses ``vim.lsp.start_client`` and
``vim.lsp.buf_attach_client``. Skipped when ``nvim`` is not installed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
SHOP = HERE.parent.parent / "examples" / "shop"
NVIM = shutil.which("nvim")

pytestmark = pytest.mark.skipif(
    NVIM is None, reason="nvim not installed (Debian: apt-get install -y neovim)")

_INIT = r"""
local cfg = vim.fn.json_decode(os.getenv("DISTDEV_NVIM_TEST"))
local function finish(result)
  local f = io.open(cfg.out, "w")
  f:write(vim.fn.json_encode(result))
  f:close()
  vim.cmd("qa!")
end
local ok, err = pcall(function()
  vim.cmd("edit " .. vim.fn.fnameescape(cfg.file))
  local buf = vim.api.nvim_get_current_buf()
  local id = vim.lsp.start_client({
    name = "distdev",
    cmd = cfg.cmd,
    root_dir = cfg.root,
    workspace_folders = {{uri = vim.uri_from_fname(cfg.root), name = "shop"}},
  })
  assert(id, "start_client failed")
  vim.lsp.buf_attach_client(buf, id)
  local client = vim.lsp.get_client_by_id(id)
  assert(vim.wait(15000, function() return client.initialized end, 20), "no initialize")
  vim.api.nvim_win_set_cursor(0, {cfg.line, cfg.col})
  vim.lsp.buf.definition()
  local moved = vim.wait(15000, function()
    return vim.api.nvim_buf_get_name(0) ~= cfg.file
  end, 20)
  local cursor = vim.api.nvim_win_get_cursor(0)
  finish({moved = moved, name = vim.api.nvim_buf_get_name(0), line = cursor[1],
          text = vim.api.nvim_get_current_line()})
end)
if not ok then finish({error = tostring(err)}) end
"""


def _line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` containing ``text``."""
    lines = path.read_text().splitlines()
    return next(n for n, line in enumerate(lines, start=1) if text in line)


def test_neovim_goes_to_the_export_behind_a_proxy(tmp_path: Path) -> None:
    orders = SHOP / "orders" / "orders.py"
    billing = SHOP / "billing" / "billing.py"
    line = _line_of(orders, "_billing.charge(")
    col = orders.read_text().splitlines()[line - 1].index("_billing.charge(") + len("_billing.")
    init = tmp_path / "init.lua"
    init.write_text(_INIT)
    out = tmp_path / "out.json"
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"),
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_DATA_HOME=str(tmp_path / "data"),
               DISTDEV_NVIM_TEST=json.dumps({
                   "cmd": [sys.executable, "-m", "distdev.lsp"], "root": str(SHOP),
                   "file": str(orders), "line": line, "col": col, "out": str(out)}))
    assert NVIM is not None
    done = subprocess.run([NVIM, "--headless", "--clean", "-u", "NONE", "-c", f"luafile {init}"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.exists(), f"nvim wrote no result (rc {done.returncode}): {done.stderr}"
    result = json.loads(out.read_text())
    assert "error" not in result, result
    assert result["moved"], result
    assert Path(result["name"]).resolve() == billing.resolve()
    assert result["line"] == _line_of(billing, "def charge(")
    assert result["text"].startswith("def charge(")
