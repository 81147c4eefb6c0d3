# Two commands do all set-up on a fresh Debian machine:
#   make demo   - install what is missing, run a point-in-time restore on local sandbox servers
#   make test   - install what is missing, lint (ruff, mypy), run the test suite against real MariaDB servers
PYTHON ?= python3
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEB_PACKAGES := mariadb-server mariadb-client

.PHONY: deps install demo lint bytecode test bench clean

deps:
	@if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ] \
	   || ! command -v mariadb-binlog >/dev/null 2>&1 || ! command -v mariadb-install-db >/dev/null 2>&1; then \
	  echo "installing $(DEB_PACKAGES) from Debian"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(DEB_PACKAGES); \
	fi

install: deps
	$(PYTHON) -m pip install -q -e '.[dev]'

demo: install
	$(PYTHON) -m binreplay demo

lint: install
	$(PYTHON) -m ruff check binreplay tests
	$(PYTHON) -m mypy binreplay

# Byte-compiled like a wheel install: an editable install has no .pyc, and with
# PYTHONDONTWRITEBYTECODE set every `python -m binreplay` (hundreds in the tests) compiles binreplay again
# (~0.15-0.25 s each measured).
bytecode:
	$(PYTHON) -m compileall -q binreplay

test: lint bytecode
	$(PYTHON) -m pytest -q

bench: install bytecode
	$(PYTHON) -m pip install -q -e '.[bench]'
	$(PYTHON) benchmarks/run.py --quick --repeat 3 --out benchmarks/RESULTS.md --chart benchmarks/results.png

clean:
	rm -rf build *.egg-info .pytest_cache
