# Every target creates .venv on first use, so `make demo` and `make test` work on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch is installed first and pinned: the local CPU wheel. An unpinned torch would pull CUDA (GBs).
TORCH := torch==2.13.0
# The invisible watermark (safestack.provenance) without its declared deps: an unpinned torch and
# the GUI OpenCV. What it really needs (PyWavelets, OpenCV headless, onnxruntime) safestack has.
WATERMARK := invisible-watermark==0.2.0

.PHONY: install demo test bench lint train clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,train,faces]'
	$(PY) -m pip install --quiet --no-deps $(WATERMARK)
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/safestack demo

# The suite runs in TEST_WORKERS processes (pytest-xdist; a test file stays in one worker, so
# its module fixtures start once), except the schemathesis fuzz test: its per-operation
# subtests do not all run inside an xdist worker, so it runs in the main process afterwards.
# pytest exits 5 when it collected no test: that is a failure here, never a pass.
TEST_WORKERS ?= 2
FUZZ := tests/gateway/test_fuzz.py
test: install
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile --ignore=$(FUZZ); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no tests" >&2; exit 1; fi; \
	[ $$rc -eq 0 ] || exit $$rc; \
	$(PY) -m pytest -q $(FUZZ); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "error: pytest collected no fuzz tests" >&2; exit 1; fi; exit $$rc

lint: install
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/classify.py --out BENCHMARKS.md
	$(PY) bench/embedders.py --out BENCHMARKS.md
	$(PY) bench/stack.py --out BENCHMARKS.md
	cd bench && ../$(PY) evals.py --out ../BENCHMARKS.md
	$(PY) bench/gateway.py --out BENCHMARKS.md
	$(PY) bench/rules.py --out BENCHMARKS.md
	$(PY) bench/hashing.py --out BENCHMARKS.md
	$(PY) bench/enforcement.py --out BENCHMARKS.md
	$(PY) bench/provenance.py --out BENCHMARKS.md
	$(PY) bench/review_queue.py --out BENCHMARKS.md

train: install
	$(VENV)/bin/safestack train

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# The screenshot in docs/system-card.md: the card `make demo` writes, in headless Chromium.
CHROMIUM ?= chromium
.PHONY: card-screenshot
card-screenshot:
	@test -f demo-output/system_card.html || { echo "error: no demo-output/system_card.html; run 'make demo' first" >&2; exit 1; }
	mkdir -p docs/img
	profile=$$(mktemp -d) && \
	timeout 120 $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-background-networking \
		--disable-component-update --no-first-run --hide-scrollbars --user-data-dir=$$profile \
		--window-size=1200,1600 --screenshot=docs/img/system-card.png \
		file://$(CURDIR)/demo-output/system_card.html; \
	rc=$$?; rm -rf $$profile; exit $$rc

# The console screenshots in docs/console.md: the end-to-end browser test, writing its pages.
.PHONY: console-screenshots
console-screenshots: install
	mkdir -p docs/img
	SAFESTACK_SCREENSHOTS=$(CURDIR)/docs/img $(PY) -m pytest -q tests/console/test_browser.py
