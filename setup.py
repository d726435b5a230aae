"""Build step of the venue package: the engine's hot path compiled to C with mypyc.

``pip install -e .`` (and ``make install``, ``make test``) runs this, in an isolated
environment that pip fills from PyPI with the build requirements of pyproject.toml
(setuptools and mypy, whose mypyc does the compiling). The modules in COMPILED become C
extensions next to their sources, and Python imports an extension in preference to its
source. The behaviour is the same either way, only faster (bench/engine.py).

Without a C compiler or Python's headers, or when mypyc refuses the code (it needs it
to type-check: ``mypy`` with pyproject's settings), the build says why and goes on
without the extensions: the venue then runs its pure-Python modules. Set
VENUE_PURE_PYTHON=1 to build without compiling.

An editable install keeps the extensions in the source tree, where an edit of a source
would go unseen behind its old extension. So the build records a hash of each compiled
source (RECORD) and the compiled engine refuses to import when one has changed since
(``_check_compiled`` in venue/engine.py): rebuild with ``python3 -m pip install -e .``,
or delete the extensions (``rm venue/*.so venue__mypyc*.so``) to run the sources.
A build that does not compile deletes the extensions it finds there.

Besides the engine, one small C module: ``sessions._relay``, the logon gateway's byte
relay on a native thread (sessions/_relay.c). It is optional the same way: if it does not
compile, the gateway relays in Python (and says so), and the gateway uses it only when
the source's hash matches the one recorded for the build (RELAY_RECORD).
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

# The engine's hot path: the engine, its book, orders and events, the ledger it settles
# in, and the pre-trade risk and margin hooks it calls for every order and command
# (with all of them compiled bench/engine.py measured ~1.5x the reference book, ~1.1x
# without the last three).
COMPILED = ["venue/events.py", "venue/orders.py", "venue/book.py", "venue/engine.py", "venue/ledger.py",
            "venue/risk.py", "venue/margin.py"]
RECORD = "build/venue-compiled.json"  # read by venue.engine._check_compiled
RELAY = "sessions/_relay.c"
RELAY_RECORD = "build/relay-compiled.json"  # read by sessions.gateway


def _note(msg: str) -> None:
    print(f"venue setup: {msg}", file=sys.stderr)


def _hashes() -> dict[str, str]:
    out = {}
    for path in COMPILED:
        with open(path, "rb") as f:
            out[os.path.basename(path)] = hashlib.sha256(f.read()).hexdigest()
    return out


def _remove_inplace_extensions() -> None:
    for path in glob.glob("venue/*.so") + glob.glob("venue/*.pyd") + glob.glob("venue__mypyc*"):
        os.remove(path)
    if os.path.exists(RECORD):
        os.remove(RECORD)


class OptionalBuildExt(build_ext):
    """build_ext that falls back to no extensions instead of failing the install."""

    def _in_source_tree(self) -> bool:  # an editable install, or build_ext --inplace
        return bool(self.inplace or getattr(self, "editable_mode", False))

    def build_extension(self, ext) -> None:  # type: ignore[no-untyped-def]
        if ext.name != "sessions._relay":
            return super().build_extension(ext)
        try:
            super().build_extension(ext)
        except Exception as e:  # the gateway then relays in Python
            _note(f"compiling the gateway's relay failed ({e}); the gateway will relay in Python")
            return
        if self._in_source_tree():
            with open(RELAY, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            os.makedirs(os.path.dirname(RELAY_RECORD), exist_ok=True)
            with open(RELAY_RECORD, "w") as f:
                json.dump({os.path.basename(RELAY): digest}, f)

    def run(self) -> None:
        try:
            super().run()
        except Exception as e:  # no compiler, no headers, a compile error
            _note(f"compiling the engine failed ({e}); installing the pure-Python modules")
            for path in self.get_outputs():
                if os.path.exists(path):
                    os.remove(path)
            if self._in_source_tree():
                _remove_inplace_extensions()
            return
        if self._in_source_tree():  # the sources may change under the extensions
            os.makedirs(os.path.dirname(RECORD), exist_ok=True)
            with open(RECORD, "w") as f:
                json.dump(_hashes(), f, indent=1, sort_keys=True)


def _extensions() -> list:
    if os.environ.get("VENUE_PURE_PYTHON"):
        _note("VENUE_PURE_PYTHON is set: not compiling")
        return []
    try:
        from mypyc.build import mypycify
    except ImportError as e:
        _note(f"mypyc is not available ({e}): not compiling")
        return []
    try:
        return mypycify(COMPILED, opt_level="3", group_name="venue")
    except (Exception, SystemExit) as e:  # mypyc exits on code it refuses (type errors)
        _note(f"mypyc refused the engine's modules ({e!r}): not compiling")
        return []


ext_modules = _extensions()
if not ext_modules:
    _remove_inplace_extensions()
if not os.environ.get("VENUE_PURE_PYTHON"):
    ext_modules.append(Extension("sessions._relay", [RELAY], extra_compile_args=["-O2"]))
setup(ext_modules=ext_modules, cmdclass={"build_ext": OptionalBuildExt})
