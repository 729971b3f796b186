# Two commands for a fresh machine (see README): `make demo` and `make test`.
# Both create or update the virtual environment .venv, install every dependency (torch
# included), build the native extension in release mode, then run the demo or the tests.

SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.relcode-deps
# One BLAS/OpenMP/torch thread: with two threads torch runs ~10x slower on 2-vCPU machines.
export OMP_NUM_THREADS ?= 1
export MKL_NUM_THREADS ?= 1
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup build inplace demo test lint test-rust test-python test-slow bench fmt clean wheel crate-check

$(PY):
	python3 -m venv $(VENV)

$(STAMP): requirements.txt | $(PY)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

build: $(STAMP)
	VIRTUAL_ENV=$(abspath $(VENV)) $(VENV)/bin/maturin develop --release --quiet

setup: build

# Build the native module into python/relcode/ without touching any environment; use with
# PYTHONPATH=python (handy in extra git worktrees that share one environment).
inplace:
	cargo build --release -p relcode-py
	# copy then rename: a process that has the old module loaded keeps its (unchanged) file
	cp target/release/lib_native.so python/relcode/_native.abi3.so.tmp
	mv -f python/relcode/_native.abi3.so.tmp python/relcode/_native.abi3.so

demo: setup
	$(PY) -m relcode demo

test: setup lint test-rust test-python

lint:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --release -- -D warnings
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	PYTHONPATH=python $(VENV)/bin/lint-imports

test-rust:
	cargo test --release

test-python:
	$(PY) -m pytest

test-slow: setup
	cargo test --release -- --ignored
	$(PY) -m pytest -m slow

# A wheel installable on glibc 2.17 and newer (manylinux2014: CentOS 7, Ubuntu 18.04, RHEL 8,
# Debian 10), stripped, into dist/; zig (from PyPI, in requirements.txt) is the linker.
wheel: $(STAMP)
	PATH=$(abspath $(VENV))/bin:$$PATH VIRTUAL_ENV=$(abspath $(VENV)) maturin build --release --zig \
		--compatibility manylinux2014 --strip --out dist

# The core crate as crates.io would ship it: package it, then build and test the packaged copy
# on its own, in a fresh target directory (it carries spec/, the conformance vectors and the
# hostile-file corpus).
crate-check:
	cargo publish -p relcode --dry-run --allow-dirty
	cargo package -p relcode --allow-dirty --no-verify
	d=$$(mktemp -d) && tar -xzf target/package/relcode-$$(cargo pkgid -p relcode | sed 's/.*[#@]//').crate -C $$d \
		&& (cd $$d/relcode-* && CARGO_TARGET_DIR=$$d/target cargo test --release); \
		rc=$$?; rm -rf $$d; exit $$rc

bench: setup
	cargo bench -p relcode-benches
	$(PY) -m relcode bench all

fmt:
	cargo fmt --all
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf target $(VENV)
