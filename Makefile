# Shortcuts for the README's two set-up commands (hack/run.sh, hack/test.sh),
# which need only python3 and git: each creates .venv on first use.
.PHONY: run test check bench clean

run:
	hack/run.sh $(ARGS)

test:
	hack/test.sh $(ARGS)

check:
	VENV_EXTRAS=test; . hack/venv.sh && hack/check.sh

bench:
	. hack/venv.sh && $$BIN/python hack/bench/plan_bench.py

clean:
	rm -rf .venv build dist *.egg-info
