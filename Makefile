# Two entry points that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCES := $(shell find runtime dap_adapter lsp -name '*.py' -o -name '*.c' -o -name '*.h') pyproject.toml

.PHONY: demo test check fuzz bench typecheck lint clean system-packages vscode-e2e-deps vsix

# Strict editable install: type checkers see the files (DESIGN §5). New modules need a
# reinstall, so the stamps depend on every source file.
$(VENV)/.installed-%: $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[$*]' --config-settings editable_mode=strict
	touch $@

demo: $(VENV)/.installed-test
	PYTHONHASHSEED=0 $(PY) examples/shop/demo.py

# Debian packages the tests drive as real clients: neovim (a second LSP client); chromium (shows
# code-server's VS Code) and the -dev packages code-server's native modules build against.
VSCODE_E2E_APT := libkrb5-dev libxkbfile-dev libsecret-1-dev pkg-config chromium
system-packages:
	@{ command -v nvim && command -v chromium && dpkg -s postgresql $(filter-out chromium,$(VSCODE_E2E_APT)); } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq neovim postgresql $(VSCODE_E2E_APT); \
	  else echo "not installed: neovim postgresql $(VSCODE_E2E_APT); their tests will be skipped (apt-get install them)"; fi; }

# Microsoft's DebugClient drives the debug adapter in one test (Node and npm from the machine).
tests/dap/node/node_modules/.installed: tests/dap/node/package.json tests/dap/node/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/dap/node --no-audit --no-fund --silent && touch $@; \
	else echo "npm is not installed: the DebugClient test will be skipped"; fi

# pyright, pinned (the checker most editors run), for `make check` and the typing tests.
PYRIGHT := tests/typing/pyright/node_modules/.bin/pyright
tests/typing/pyright/node_modules/.installed: tests/typing/pyright/package.json tests/typing/pyright/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/typing/pyright --no-audit --no-fund --silent && touch $@; \
	else echo "npm is not installed: pyright will not run"; fi

# The VS Code extension's build and unit-test tools (esbuild, TypeScript, mocha).
vscode-extension/node_modules/.installed: vscode-extension/package.json vscode-extension/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix vscode-extension --no-audit --no-fund --silent && touch $@; \
	else echo "npm is not installed: the VS Code extension tests will be skipped"; fi

# The VS Code end-to-end test's toolchain (Node 24, code-server, playwright-core, vsce): about
# 6 minutes once per machine, cached outside the repository; a second run only checks the stamps.
vscode-e2e-deps: system-packages
	@if command -v npm >/dev/null; then $(PYTHON) tests/vscode/toolchain.py install e2e; \
	else echo "npm is not installed: the VS Code end-to-end test will be skipped"; fi

# The extension as a .vsix (vscode-extension/distdev-<version>.vsix), packaged by vsce under the
# toolchain's Node 24 (vsce needs Node 22 or newer); `code --install-extension FILE` installs it.
vsix: vscode-extension/node_modules/.installed
	$(PYTHON) tests/vscode/toolchain.py vsix

# Ray listens beyond loopback, so the suite runs in a fresh network namespace where only
# loopback is up: `unshare -n` as root, `unshare -rn` (a user namespace) otherwise. Where neither
# works it runs as it is, and the Ray tests skip, saying why (tests/ray/conftest.py).
NETNS = $(shell command -v ip >/dev/null && { unshare -n true 2>/dev/null && echo 'unshare -n' \
          || { unshare -rn true 2>/dev/null && echo 'unshare -rn'; }; })
PYTEST := PYTHONHASHSEED=0 $(PY) -m pytest -q

test: $(VENV)/.installed-test system-packages tests/dap/node/node_modules/.installed \
      vscode-extension/node_modules/.installed tests/typing/pyright/node_modules/.installed \
      vscode-e2e-deps
	$(if $(NETNS),$(NETNS) sh -c 'ip link set lo up && exec env $(PYTEST)',$(PYTEST))

# The differential generator at length: FUZZ_EXAMPLES random multi-service programs (200 run
# in `make test`), each recorded, replayed in a fresh process under another seed and zone, and
# compared; a failure is shrunk and printed as a conformance case to paste into the corpus.
FUZZ_EXAMPLES ?= 5000
fuzz: $(VENV)/.installed-test
	DISTDEV_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTEST) tests/determinism/test_generated.py -k live_state

bench: $(VENV)/.installed-bench
	PYTHONHASHSEED=0 $(PY) benchmarks/run.py

typecheck: $(VENV)/.installed-test tests/typing/pyright/node_modules/.installed
	$(PY) -m mypy -p distdev
	$(PYRIGHT)

lint: $(VENV)/.installed-test
	$(PY) -m ruff check .

# The quick loop: lint, both type checkers, and every test except the VS Code end-to-end run,
# the Ray engine's and those marked slow, on two workers (about 4 minutes on 2 cores). `make
# test` is the whole, one test at a time.
check: lint typecheck tests/dap/node/node_modules/.installed vscode-extension/node_modules/.installed
	$(PYTEST) -n 2 -m "not slow" --ignore=tests/ray --ignore=tests/vscode/test_e2e.py

clean:
	rm -rf $(VENV) build dist *.egg-info .distdev
