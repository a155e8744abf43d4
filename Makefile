# Single entry point. The two commands a newcomer needs:
#   make site   build the lab (if needed), boot the nodes, run playbooks/site.yml on them
#   make test   lint + unit + module integration + molecule scenarios
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
LAB_NODES ?= 3
# How the lab's VMs boot: firmware (UEFI and GRUB, as a server does; site.yml can switch the kernel
# command line and reboot) or direct (qemu loads the kernel: faster, but update-grub changes nothing).
LAB_BOOT ?= firmware
PYTEST_ARGS ?=

.PHONY: help deps venv site lab-up lab-down lab-status lab-clean lint test unit integration molecule bench clean

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: ## install the Debian packages the lab and the tests need (root, apt)
	@bash scripts/install-system-deps

$(VENV)/.stamp: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

venv: $(VENV)/.stamp ## create the Python venv with the pinned tools

lab-up: deps venv ## build the base image if needed and boot LAB_NODES VMs (default 3) as LAB_BOOT says
	$(PY) -m lab up --nodes $(LAB_NODES) --boot $(LAB_BOOT)

lab-status: venv ## show the lab's VMs, services and logs
	$(PY) -m lab status

lab-down: venv ## stop every VM and service the lab started (keeps the cached image)
	$(PY) -m lab down

lab-clean: venv ## lab-down, then delete the lab's state dir (image cache included)
	$(PY) -m lab clean

site: lab-up ## main job: run playbooks/site.yml on the lab and report what was provisioned
	$(PY) -m lab site

lint: venv ## ruff, yamllint, ansible-lint (production profile)
	$(PY) -m pytest -q tests/lint

test: deps venv ## the whole suite: lint, unit, integration, molecule (what CI runs)
	@bash scripts/run-tests $(PYTEST_ARGS)

unit: venv
	@bash scripts/run-tests tests/unit $(PYTEST_ARGS)

integration: deps venv
	@bash scripts/run-tests tests/integration $(PYTEST_ARGS)

molecule: deps venv
	@bash scripts/run-tests tests/molecule $(PYTEST_ARGS)

bench: deps venv ## run every benchmark in bench/ and print figures
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean: lab-down
	rm -rf $(VENV) .pytest_cache .ruff_cache
