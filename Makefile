# The two commands a newcomer needs (see README):
#   make demo   - set everything up and run an end-to-end audit on built-in defaults
#   make test   - set everything up and pass the tests (Python 3.11, and 3.12 where present)
PYTHON ?= python3
VENV ?= .venv
# Python 3.12 exists on these machines as `PYENV_VERSION=3.12.1 python3.12`.
PY312 := $(shell PYENV_VERSION=3.12.1 python3.12 -c 'import sys; print(sys.executable)' 2>/dev/null)
VENV312 ?= .venv312
DEMO_OUT ?= privaudit-demo
PYTEST_ARGS ?=

.PHONY: demo test test311 test312 system-deps venv clean

demo: $(VENV)/.installed
	$(VENV)/bin/privaudit demo -o $(DEMO_OUT)

system-deps:
	bash scripts/system-deps.sh

# hatch_build.py compiles the C modules at install: a change to any of them reinstalls
BUILD_INPUTS := pyproject.toml hatch_build.py privaudit/source/_tnet.c privaudit/detect/_walk.c

$(VENV)/.installed: $(BUILD_INPUTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q ".[pdf]"
	touch $@

$(VENV)/.installed-dev: $(BUILD_INPUTS)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --upgrade pip
	$(VENV)/bin/python -m pip install -q -e ".[test,pdf]"
	$(VENV)/bin/python -m compileall -q privaudit  # what pip does for a regular install (editable ones skip it)
	touch $@ $(VENV)/.installed

$(VENV312)/.installed-dev: $(BUILD_INPUTS)
	$(PY312) -m venv $(VENV312)
	$(VENV312)/bin/python -m pip install -q --upgrade pip
	$(VENV312)/bin/python -m pip install -q -e ".[test,pdf]"
	$(VENV312)/bin/python -m compileall -q privaudit
	touch $@

test: system-deps test311 $(if $(PY312),test312)

test311: $(VENV)/.installed-dev
	$(VENV)/bin/python -m pytest -q $(PYTEST_ARGS)

test312: $(VENV312)/.installed-dev
	$(VENV312)/bin/python -m pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) $(VENV312) build dist *.egg-info $(DEMO_OUT)
