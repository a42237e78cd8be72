# Two commands do all the set-up: `make demo` runs the main job, `make test` the tests.
# Both create (or reuse) a local .venv and install the project into it.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.jetkeras-installed
DEV_STAMP := $(VENV)/.jetkeras-dev-installed
PYTEST_ARGS ?=

.PHONY: test demo install lint clean

install: $(STAMP)

# The demo needs the runtime dependencies and one TensorFlow (the [cpu] extra: a GPU
# machine installs ".[gpu]" by hand instead, see the README); the tests add the dev extra (pytest,
# nbclient, sunkit-image's real AIA cutout, jax for the second Keras backend).
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[cpu]"
	touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e ".[cpu,dev]"
	touch $(DEV_STAMP)

# pytest exits 5 when it collects no test: that is a failure here, like any other.
test: $(DEV_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	if [ $$status -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; \
	exit $$status

demo: $(STAMP)
	$(PY) -m jetkeras.demo

lint: $(DEV_STAMP)
	$(PY) -m ruff check jetkeras tests bench

clean:
	rm -rf $(VENV) demo_output build *.egg-info
