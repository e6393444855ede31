# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(shell find runtime dap_adapter lsp -name '*.py') pyproject.toml

.PHONY: demo test bench typecheck clean system-packages

# Strict editable install: type checkers see the files (DESIGN §5). New modules need a
# reinstall, so the stamps depend on every source file.
$(VENV)/.installed-%: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$*]' --config-settings editable_mode=strict
	touch $@

demo: $(VENV)/.installed-test
	PYTHONHASHSEED=0 $(PY) examples/shop/demo.py

# Debian packages the tests drive as real clients: neovim (a second LSP client).
system-packages:
	@command -v nvim >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq neovim; \
	  else echo "neovim is not installed: its test will be skipped (apt-get install neovim)"; fi; }

# Microsoft's DebugClient drives the debug adapter in one test (Node and npm from the machine).
tests/dap/node/node_modules/.installed: tests/dap/node/package.json tests/dap/node/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/dap/node --no-audit --no-fund --silent && touch $@; \
	else echo "npm is not installed: the DebugClient test will be skipped"; fi

test: $(VENV)/.installed-test system-packages tests/dap/node/node_modules/.installed
	PYTHONHASHSEED=0 $(PY) -m pytest -q

bench: $(VENV)/.installed-bench
	PYTHONHASHSEED=0 $(PY) benchmarks/run.py

typecheck: $(VENV)/.installed-test
	$(PY) -m mypy -p distdev

clean:
	rm -rf $(VENV) build dist *.egg-info .distdev
