# Every target creates or refreshes the locked virtual environment itself (uv, from uv.lock).
# uv is taken from PATH, or installed once into .tools/ when the machine has none.
UV_VERSION := 0.13.8
UV := $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
RUN = $(UV) run --locked

.PHONY: venv test demo plan lint format schema docs bench-plan bench-images images test-policies

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv==$(UV_VERSION)

# Bytecode is compiled at install time: imports of the large provider SDKs (pulumi-aws,
# pulumi-gcp) then cost a fraction, also where PYTHONDONTWRITEBYTECODE is set.
venv: $(filter .tools/bin/uv,$(UV))
	$(UV) sync --locked --compile-bytecode

test: venv
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy
	$(RUN) pytest
	$(MAKE) --no-print-directory test-policies

# The demo runs Debian's Prometheus 2.42 and Alertmanager 0.25 (the alert path, the canary
# analysis). On a machine where make runs as root with apt-get (a fresh container, as .ci/run)
# they are installed here, without recommends, and the daemons the packages start under systemd
# are stopped (the demo starts its own); otherwise `mlops demo` stops at once naming them.
demo: venv
	@if ! command -v prometheus >/dev/null || ! command -v prometheus-alertmanager >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing prometheus prometheus-alertmanager (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      --no-install-recommends prometheus prometheus-alertmanager >/dev/null; \
	    systemctl stop prometheus prometheus-alertmanager 2>/dev/null || true; \
	  fi; \
	fi
	$(RUN) mlops demo

plan: venv
	$(RUN) mlops plan --stack local

lint: venv
	$(RUN) ruff check .

format: venv
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

schema: venv
	$(RUN) mlops schema

# The generated reference sections (component READMEs, stacks/REFERENCE.md, provider/README.md).
docs: schema
	$(RUN) mlops docs

bench-plan: venv
	$(RUN) python bench/plan/run.py

# The model server and platform images, on a local Debian base where no registry is reachable
# (images/build.py); needs a running Docker engine, and root with debootstrap for the base.
images: venv
	$(RUN) python -m images.build

bench-images: images
	$(RUN) python bench/images/run.py

# The policy pack is its own uv project (pulumi-policy pins protobuf 5.29; kfp here needs 6.x):
# its own lock, its own .venv under policies/.
test-policies: $(filter .tools/bin/uv,$(UV))
	$(UV) --directory policies sync --locked --quiet
	$(UV) --directory policies run --locked pytest
