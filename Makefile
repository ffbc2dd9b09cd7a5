# Two commands do everything on a fresh clone (each creates the environment on first use):
#   make book    build the book into book/_build/html (cpu scale, from stored results): the static site,
#                ready to publish as it is (.github/workflows/book.yml publishes it on GitHub Pages)
#   make test    run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The data root: datasets live here (git-ignored). Offline, they are laid out from ../shared/data.
export NCUTILS_DATA ?= $(CURDIR)/data
SHARED_DATA := $(CURDIR)/../shared/data
# The one setting of the launch buttons: the repository's public GitHub URL (https://github.com/OWNER/REPO).
# Set (make book REPO_URL=...), every chapter gets a Binder button (and a Colab one once `make colab`'s
# notebooks are committed) and the pages a repository button; empty (the default), no button, and no page
# links to or loads anything from the network.
export REPO_URL ?=

.PHONY: test book colab labs data env browser clean
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

# The browser test (tests/test_html.py) drives Chromium through chromedriver: Debian's packages,
# installed with apt (as root, or with sudo) when missing. CHROMIUM / CHROMEDRIVER name other copies.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
browser:
	@if command -v "$${CHROMIUM:-chromium}" >/dev/null && command -v "$${CHROMEDRIVER:-chromedriver}" >/dev/null; then :; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	else echo "no apt-get: install Chromium and its chromedriver for tests/test_html.py"; fi

test: data browser
	$(PY) -m pytest

book: data
	$(PY) -m ncutils.book --scale cpu

# Colab opens only .ipynb files from GitHub: notebooks/colab/*.ipynb, the sources with a first cell that clones
# the repository (REPO_URL) and installs ncutils. Commit them; until then the book shows no Colab button.
colab: env
	$(PY) -m ncutils.book --colab-notebooks

# The labs' student versions (every solution cell replaced by a stub) into notebooks/labs/student/ (git-ignored);
# python -m ncutils.labs student DIR writes them elsewhere.
labs: env
	$(PY) -m ncutils.labs student

clean:
	rm -rf book/_build book/_executed book/_labs notebooks/labs/student
