# Fresh-machine entry points. `make demo` and `make test` create (and then reuse) .venv,
# install the pinned versions in requirements/pinned.txt plus this package, and run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# -rs: list every skipped test with its reason (e.g. no real clips, no FFmpeg for torchcodec).
PYTEST_ARGS ?= -q -rs

.PHONY: install ffmpeg demo lint format test clean-venv

$(STAMP): setup.py requirements/pinned.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements/pinned.txt
	$(PY) -m pip install -q -c requirements/pinned.txt -e ".[dev]"
	touch $(STAMP)

# torchcodec needs a system FFmpeg; install it when we can (root + apt), else say so and go on.
ffmpeg:
	@command -v ffmpeg >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg >/dev/null || \
	    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg >/dev/null; } || \
	    echo "warning: could not install FFmpeg; the torchcodec decoder (and its tests) will be skipped"; \
	  else echo "note: system FFmpeg not installed; the torchcodec decoder will be unavailable (see INSTALL.md)"; fi; }

install: $(STAMP) ffmpeg

demo: install
	$(PY) tools/demo.py

# ruff: lint (pyflakes, pycodestyle, isort, pyupgrade) and format, as configured in pyproject.toml.
lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS) tests

clean-venv:
	rm -rf $(VENV)
