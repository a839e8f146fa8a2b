# Every target creates or refreshes the locked virtual environment itself (uv, from uv.lock).
UV ?= uv
RUN = $(UV) run --locked

.PHONY: venv test demo plan lint format bench

venv:
	$(UV) sync --locked

test: venv
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) pytest

demo: venv
	$(RUN) mlops demo

plan: venv
	$(RUN) mlops plan --stack local

lint: venv
	$(RUN) ruff check .

format: venv
	$(RUN) ruff format .
	$(RUN) ruff check --fix .
