# The two commands of the README. Both install what they need first.
PY ?= python3

.PHONY: demo test install services bench softhsm

# custody's embedded default keeps its keys in a SoftHSM2 token (Debian's softhsm2);
# without it custody falls back, loudly, to a software keystore
softhsm:
	@command -v softhsm2-util >/dev/null 2>&1 || { \
	  S=""; [ "$$(id -u)" = "0" ] || S=sudo; \
	  if command -v apt-get >/dev/null 2>&1; then \
	    $$S apt-get update -qq && $$S env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null; \
	  else echo "warning: install SoftHSM2 (softhsm2-util) for custody's token" >&2; fi; }

install: softhsm
	$(PY) fix_config/build_quickfix.py
	$(PY) -m pip install -q -e .
	@command -v pyenv >/dev/null 2>&1 && pyenv rehash || true

demo: install  ## run the demo venue on its embedded defaults (FIX on 127.0.0.1:9878/9879/9880)
	$(PY) -m cli demo $(ARGS)

test:  ## install test dependencies and system packages, start PostgreSQL/Redis if down, run every test
	./.ci/services
	$(PY) fix_config/build_quickfix.py
	$(PY) -m pip install -q -e '.[test]'
	@command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
	$(PY) -m pytest $(ARGS)

bench:
	$(PY) bench/engine.py
