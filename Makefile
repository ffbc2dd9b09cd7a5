# Two commands do everything on a fresh clone (each creates the environment on first use):
#   make book    build the book into book/_build/html (cpu scale, from stored results)
#   make test    run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The data root: datasets live here (git-ignored). Offline, they are laid out from ../shared/data.
export NCUTILS_DATA ?= $(CURDIR)/data
SHARED_DATA := $(CURDIR)/../shared/data

.PHONY: test book data env clean
env: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

# Lay out the offline copies when they are beside the repo; otherwise torchvision downloads on first use.
data: env
	@if [ -f "$(SHARED_DATA)/prepare.py" ]; then $(PY) "$(SHARED_DATA)/prepare.py" "$(NCUTILS_DATA)"; \
	else echo "no $(SHARED_DATA): datasets will be downloaded into $(NCUTILS_DATA) on first use"; fi

test: data
	$(PY) -m pytest

book: data
	$(PY) -m ncutils.book --scale cpu

clean:
	rm -rf book/_build book/_executed
