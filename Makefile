VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-integration lint format bench chaos clean \
	example-content example-support example-data example-agent

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,langchain,llamaindex,examples]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/orchestrator demo

example-content: $(STAMP)
	$(PY) -m examples.content

example-support: $(STAMP)
	$(PY) -m examples.support

example-data: $(STAMP)
	$(PY) -m examples.data_analysis

example-agent: $(STAMP)
	$(PY) -m examples.agent

test: $(STAMP)
	$(PY) -m pytest tests/unit tests/integration tests/replay tests/ui -n 2 --dist loadfile

test-unit: $(STAMP)
	$(PY) -m pytest tests/unit tests/replay

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(STAMP)
	cd bench && ../$(PY) throughput.py
	cd bench && ../$(PY) rebuild.py
	cd bench && ../$(PY) operators.py
	cd bench && ../$(PY) recovery.py
	cd bench && ../$(PY) api.py
	cd bench && ../$(PY) agent_loop.py
	cd bench && ../$(PY) conductor_polling.py

chaos: $(STAMP)
	$(PY) -m pytest tests/chaos -m chaos -s

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
