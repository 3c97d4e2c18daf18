# FlexLive — set-up and everyday commands. `make run` and `make test` set up a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMPS := $(VENV)/.stamps
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The CPU build of torch lies on disk on the project's machines; users may override.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: help run serve test lint format venv runtime dev system-deps model clean

help:
	@echo "make run    - install the runtime into $(VENV) and serve the bundled model on $(HOST):$(PORT)"
	@echo "make test   - install everything the tests need and run the whole suite"
	@echo "make lint   - ruff (lint + format check) and mypy on the runtime packages"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMPS)/runtime: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	@mkdir -p $(STAMPS) && touch $@

$(STAMPS)/dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/pip install --quiet -e ".[train,realsense,dev]"
	@mkdir -p $(STAMPS) && touch $@ $(STAMPS)/runtime

runtime: $(STAMPS)/runtime
dev: $(STAMPS)/dev system-deps

# Debian packages the tests use: libusb for pyrealsense2, chromium for the preview-page test,
# docker-compose to validate the compose file statically, prometheus for `promtool check
# metrics/config/rules`, mosquitto for the daemon's MQTT tests (a real broker). Installed when running as
# root; otherwise say what is missing.
system-deps:
	@if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	  missing=""; \
	  dpkg -s libusb-1.0-0 >/dev/null 2>&1 || missing="$$missing libusb-1.0-0"; \
	  command -v docker-compose >/dev/null 2>&1 || missing="$$missing docker-compose"; \
	  command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	  command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	  command -v mosquitto >/dev/null 2>&1 || test -x /usr/sbin/mosquitto || missing="$$missing mosquitto"; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	      || echo "WARNING: could not install$$missing; tests that need them will be skipped with a reason"; \
	  fi; \
	else \
	  echo "NOTE: not root (or no apt-get): not installing libusb-1.0-0 / docker-compose / chromium / prometheus / mosquitto;"; \
	  echo "      tests that need them skip with a reason if they are missing"; \
	fi

run: runtime
	$(BIN)/liveness serve --host $(HOST) --port $(PORT)

serve: run

test: dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: dev
	$(BIN)/ruff check service models sensors synth flexlive tests benchmarks
	$(BIN)/ruff format --check service models sensors synth flexlive tests benchmarks
	$(BIN)/mypy

format: dev
	$(BIN)/ruff format service models sensors synth flexlive tests benchmarks
	$(BIN)/ruff check --fix service models sensors synth flexlive tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
