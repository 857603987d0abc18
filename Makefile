# The two front-door commands: `make serve` and `make test`. Both create .venv and install first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PORT   ?= 8000
STAMP  := $(VENV)/.installed-stamp

.PHONY: install serve test lint lock clean translations

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

# Re-pin: requirements.lock (everything in .venv), then the images' sets from it: requirements/serve.txt (the default
# image: LiteRT, no TensorFlow) and requirements/savedmodel.txt (the savedmodel target), by requirements/pin.py.
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^digits' > requirements.lock
	$(BIN)/python requirements/pin.py

# The pages' translations (service/i18n.py), with Babel: extract every `_()` of service/ (babel.cfg) into
# messages.pot, merge it into each language's messages.po (new strings come in empty: translate them there), and
# compile the .po files into the messages.mo the service reads. Commit all three; tests/test_i18n.py fails on a
# string without its translation, or a .mo older than its .po. A new language: `$(BIN)/pybabel init -l <xx_YY>
# -i service/translations/messages.pot -d service/translations`, then add it to service/i18n.py's LOCALES.
TRANSLATIONS := service/translations
translations:
	$(BIN)/pybabel extract -F babel.cfg --no-location --sort-output --project=digits -o $(TRANSLATIONS)/messages.pot .
	$(BIN)/pybabel update -i $(TRANSLATIONS)/messages.pot -d $(TRANSLATIONS) --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d $(TRANSLATIONS) --statistics
