# Two commands do all the set-up:  `make repro` (main job) and `make test` (test suite).
# Both create .venv on first use and install the project with its dev extras.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: help venv browser test repro bench clean

help:
	@echo "make repro   - set up .venv and rebuild every table/figure (dvc repro; params.yaml: profile tiny)"
	@echo "make test    - set up .venv and run the test suite"
	@echo "make bench   - run the CPU hash-grid benchmark (benchmarks/encoding.py; the others: docs/performance.md)"

$(STAMP): pyproject.toml constraints.txt
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); [ "$${free:-99}" -ge 7 ] || \
	  echo "note: .venv takes up to 7 GB (torch's CUDA build and its libraries) and this disk has $${free} GB free; pip may stop with 'No space left on device'"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt torch torchvision
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[dev]"
	touch $(STAMP)

venv: $(STAMP)

# The survey's browser test drives a real Chromium; Playwright cannot download its own here, so use
# Debian's package (installed when we are root with apt-get; otherwise that one test says why it skips).
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1; } || \
	  echo "note: no chromium could be installed; the browser test will be skipped"

test: $(STAMP) browser
	$(PY) -m pytest -q -n 2 --dist loadfile

# the stages call `fourdfy` and `python`: put the venv first on PATH
repro: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/dvc repro

bench: $(STAMP)
	$(PY) benchmarks/encoding.py

clean:
	rm -rf $(VENV) .pytest_cache
