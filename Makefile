# hearing_hands_ros: two commands. Each sets up what is missing on its own (scripts/setup.sh).
SHELL := /bin/bash
VENV := .venv
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export MUJOCO_GL := osmesa

.PHONY: setup demo test bench clean
setup:
	@bash scripts/setup.sh

demo: setup
	@$(VENV)/bin/hearing-hands demo --out out/demo

test: setup
	@$(VENV)/bin/python -m pytest -q -p no:cacheprovider test

bench: setup
	@for b in bench/bench_*.py; do echo "== $$b"; $(VENV)/bin/python $$b || exit 1; done

clean:
	rm -rf out build install log *.egg-info
