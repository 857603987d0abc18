# The two front-door commands: `make serve` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed-stamp

.PHONY: install serve test lint lock clean

# requirements.lock pins every package (as constraints), so every machine runs the same versions.
$(STAMP): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet -c requirements.lock -e ".[train,test,dev]"
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	PORT=$(PORT) $(BIN)/digits-serve

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis

# Re-pin: requirements.lock (everything in .venv) and requirements/serve.txt (the image's runtime set).
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^digits' > requirements.lock
	$(BIN)/python -m pip install --dry-run --ignore-installed --quiet --report /tmp/serve-report.json \
		-c requirements.lock tensorflow-cpu flask pillow numpy gunicorn gevent prometheus-client ai-edge-litert pyspng \
		opencv-python-headless zlib-ng
	( echo "# Runtime dependencies of the service, pinned (the Docker image installs exactly these)."; \
	  echo "# Regenerate with: make lock"; \
	  $(BIN)/python -c "import json; r = json.load(open('/tmp/serve-report.json')); \
	  [print(f\"{i['metadata']['name']}=={i['metadata']['version']}\") for i in sorted(r['install'], key=lambda i: i['metadata']['name'].lower())]" \
	) > requirements/serve.txt
