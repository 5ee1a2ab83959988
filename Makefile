# shardwise.redis — one entry point for the lab, tests and lint.
#   make lab       six local Redis hosts in three zones, site.yml, how to connect
#   make lab-down  remove the lab hosts
#   make lab-drill kill hosts and zones on the lab with BullMQ clients running, print what they saw
#   make bench     recreate the lab and measure every headline figure against its reference (~40 min;
#                  not part of make test): bench/results/<date>.json + PNGs, table in docs/benchmarks.md
#   make test      lint + unit tests + molecule scenarios (what CI runs)
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= /usr/bin/python3
VENV := .venv
BIN := $(VENV)/bin
CACHE := .cache
COLLECTION_LINK := $(CACHE)/collections/ansible_collections/shardwise/redis
APT_PACKAGES := podman runc netavark aardvark-dns iptables uidmap debootstrap openssh-client \
                patchelf python3-venv ca-certificates curl shellcheck
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)
ARCHIVE := $(CACHE)/redis-7.2.4-linux-x86_64.tar.gz
PROMTOOL := $(CACHE)/bin/promtool
SCENARIOS ?= default drill recovery add_shard memory upgrade timers backup secrets

.PHONY: help deps venv archive image lab lab-durable lab-down lab-status lab-drill bench bench-scale lint unit rules molecule test clean

help:
	@echo "make lab | lab-durable | lab-down | lab-status | lab-drill | bench | bench-scale | test | lint | unit | rules | molecule [SCENARIOS=...] | clean"

# ---------------------------------------------------------------- set-up (idempotent)
$(CACHE)/.deps-stamp: Makefile tools/lab/podman-setup.sh
	@mkdir -p $(CACHE)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: apt-get install $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  echo "deps: apt-get install nodejs npm (the docs/connect.md snippets run on Node.js)"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }
	@tools/lab/podman-setup.sh
	@touch $@

deps: $(CACHE)/.deps-stamp

# The test harness (tests/harness: clients, probes, drills) is installed editable: molecule, tools/bench,
# tools/lab and tools/dev import it as shardwise_harness and run its programs with python -m. A .pth file
# puts .cache/collections on the venv's path, so ansible_collections.shardwise.redis is this checkout.
$(BIN)/.stamp: requirements/dev.txt tests/harness/pyproject.toml | $(CACHE)/.deps-stamp
	@echo "venv: installing requirements/dev.txt and tests/harness into $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements/dev.txt
	@$(BIN)/pip install -q --disable-pip-version-check --no-deps -e tests/harness
	@echo "$(CURDIR)/$(CACHE)/collections" > "$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/shardwise-collections.pth"
	@touch $@

$(COLLECTION_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../../.. $@

venv: $(BIN)/.stamp $(COLLECTION_LINK)

$(ARCHIVE): tools/redis-archive/build.sh | $(BIN)/.stamp
	@rm -f $@ $@.sha256
	@PIP=$(BIN)/pip OUT_DIR=$(CACHE) tools/redis-archive/build.sh >/dev/null

archive: $(ARCHIVE)

# promtool from Debian's prometheus package, unpacked privately (no Prometheus server is installed).
$(PROMTOOL): | $(CACHE)/.deps-stamp
	@mkdir -p $(CACHE)/bin $(CACHE)/promtool-deb
	@cd $(CACHE)/promtool-deb && rm -f prometheus_*.deb && \
	  { apt-get download -qq prometheus 2>/dev/null || { apt-get update -qq && apt-get download -qq prometheus 2>/dev/null; }; }
	@dpkg-deb --fsys-tarfile $(CACHE)/promtool-deb/prometheus_*.deb | tar -xO ./usr/bin/promtool > $@.tmp
	@chmod 0755 $@.tmp && mv $@.tmp $@

image: deps
	@tools/lab/image.sh bookworm >/dev/null
	@tools/lab/image.sh trixie >/dev/null

# ---------------------------------------------------------------- lab
lab: venv archive image
	@tools/lab/hosts.sh up
	@$(BIN)/ansible-playbook -i inventories/lab playbooks/site.yml
	@tools/lab/connect.sh

# The durable profile (docs/failure-modes.md): nine hosts, two replicas per shard, min-replicas-to-write 1.
# Replaces the six-host lab (same network and addresses); make lab-down removes it too.
lab-durable: venv archive image
	@tools/lab/hosts.sh down
	@LAB_PROFILE=durable tools/lab/hosts.sh up
	@$(BIN)/ansible-playbook -i inventories/lab-durable playbooks/site.yml
	@LAB_INVENTORY=inventories/lab-durable tools/lab/connect.sh

lab-down:
	@tools/lab/hosts.sh down

lab-status: venv
	@tools/lab/connect.sh

# Failure drills on the running lab (kills hosts; about three minutes): client-side figures.
lab-drill: venv
	@tools/lab/drill.sh

# Benchmarks on a fresh lab (recreates the lab hosts; about 40 minutes): docs/benchmarks.md explains them.
$(BIN)/.bench-stamp: requirements/bench.txt | $(BIN)/.stamp
	@$(BIN)/pip install -q --disable-pip-version-check -r requirements/bench.txt
	@touch $@

bench: venv archive image $(BIN)/.bench-stamp
	@$(BIN)/python tools/bench/bench.py

# Scale (issue 34): local Redis nodes on one host container, 6 to 90 of them, the collection beside redis-cli
# (about 25 minutes; not part of make test). tools/bench/scale_bench.py says what it measures; docs/scaling.md.
SCALE_SIZES ?= 6,30,60,90
bench-scale: venv archive image $(BIN)/.bench-stamp
	@PYTHONPATH=tools/bench $(BIN)/python tools/bench/scale_bench.py --sizes $(SCALE_SIZES)

# ---------------------------------------------------------------- checks
lint: venv
	@$(BIN)/yamllint -s .
	@$(BIN)/flake8 plugins tests tools
	@$(BIN)/ansible-lint -q
	@cd $(COLLECTION_LINK) && ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/$(CACHE)/collections \
	  $(CURDIR)/$(BIN)/antsibull-docs lint-collection-docs --plugin-docs .
	@$(BIN)/antsibull-changelog lint
	@tools/ci/sanity.sh
	@tools/ci/check-build.sh

unit: venv archive
	@$(BIN)/pytest -q -n auto tests/unit

rules: $(PROMTOOL)
	@$(PROMTOOL) check rules roles/exporter/files/prometheus/redis-rules.yml
	@$(PROMTOOL) test rules tests/prometheus/redis-rules.test.yml
	@$(PROMTOOL) check rules roles/runbook_timers/files/prometheus/runbook-rules.yml
	@$(PROMTOOL) test rules tests/prometheus/runbook-rules.test.yml

molecule: venv archive image
	@for s in $(SCENARIOS); do tools/ci/molecule.sh $$s || exit 1; done

test: lint unit rules molecule

clean: lab-down
	@if command -v podman >/dev/null; then ids=$$(podman images -q --filter label=shardwise.converged; podman images -q --filter label=shardwise.controller); \
	  [ -z "$$ids" ] || podman rmi --force $$ids >/dev/null; fi
	@rm -rf $(VENV) $(CACHE)
