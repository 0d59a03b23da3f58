# The two commands of the README. Each creates the virtual environment on first use.
#   make demo   train a small model with everything captured and serve the dashboard (http://127.0.0.1:8050/)
#   make test   the whole test suite, browser tests in Debian's headless Chromium included
#   make docs   the docs site into site/: browser tests photograph the dashboard, then mkdocs build --strict

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test docs system-deps clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/torchscope demo

# Debian's chromium (+ chromium-driver) for the browser tests and postgresql for the PostgreSQL store tests;
# installed once, as root (CI runs as root).
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages for the tests:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

# pytest exits 5 when it ran no test: that must fail, not pass.
test: $(STAMP) system-deps
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest ran no tests: failing"; exit 1; fi; exit $$rc

# The browser tests that photograph the pages the docs show (docs/screenshots/*.png), then the site.
DOC_SHOTS := tests/dashboard/test_dashboard_browser.py::test_runs_page_lists_runs_and_links_to_run_charts \
	tests/dashboard/test_graph_view_browser.py::test_open_expand_a_module_and_inspect_an_op \
	tests/dashboard/test_compare_browser.py::test_profile_comparison_of_two_recorded_traces \
	"tests/dashboard/test_profile_view_browser.py::test_overview_and_kernels_grid_of_an_imported_gpu_trace[gpu_trace]"

docs: $(STAMP) system-deps
	TORCHSCOPE_DOC_SCREENSHOTS=1 $(BIN)/python -m pytest -q $(DOC_SHOTS)
	$(BIN)/python -m mkdocs build --strict -d site

clean:
	rm -rf $(VENV) .pytest_cache site
