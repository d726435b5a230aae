"""Builds and installs QuickFIX 1.16.0 from PyPI's source with the venue's fix, once.

    python fix_config/build_quickfix.py        (the Makefile runs it before `pip install`)

The fix. In QuickFIX 1.16.0's ThreadedSocketConnection, a disconnect closes the socket,
but the connection's thread goes round its loop once more and polls and reads the closed
descriptor number; if the number was reused meanwhile (any socket or file the process
opened since: the logon gateway's connections, the SQL store's, Redis's), QuickFIX reads
from it, stealing its bytes, and keeps polling it until it fails. Seen here as clients
losing the Logout that refused their logon. The fix: once disconnected, the connection
neither polls nor reads again (two checks of m_disconnect, made atomic).

The wheel is version ``1.16.0+venue.1`` (a PEP 440 local version, so ``quickfix==1.16.0``
still matches), built once (about 8 minutes here) and kept in ``$VENUE_WHEELS`` (default
``~/.cache/venue/wheels``). Run again, the script does nothing if it is installed.
"""
from __future__ import annotations

import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "1.16.0"
LOCAL = "1.16.0+venue.1"
WHEELS = os.environ.get("VENUE_WHEELS", os.path.join(os.path.expanduser("~"), ".cache", "venue", "wheels"))

# (file, old text, new text): exact replacements; the build stops if one does not apply
PATCH = [
    ("C++/ThreadedSocketConnection.h", "  bool m_disconnect;", "  std::atomic<bool> m_disconnect;"),
    ("C++/ThreadedSocketConnection.h", "#include \"Parser.h\"", "#include \"Parser.h\"\n#include <atomic>"),
    ("C++/ThreadedSocketConnection.cpp",
     "bool ThreadedSocketConnection::read() {\n",
     "bool ThreadedSocketConnection::read() {\n"
     "  // venue patch: once disconnected the socket is closed and its number may already\n"
     "  // belong to another socket or file of this process: never poll or read it again.\n"
     "  if (m_disconnect) {\n"
     "    return false;\n"
     "  }\n"),
    ("C++/ThreadedSocketConnection.cpp",
     "    try {\n      m_pSession->next(msg, UtcTimeStamp::now());\n",
     "    if (m_disconnect) {\n      return; // venue patch: nothing more for a disconnected session\n    }\n"
     "    try {\n      m_pSession->next(msg, UtcTimeStamp::now());\n"),
    ("setup.cfg", f"version = {VERSION}", f"version = {LOCAL}"),
]


def installed() -> str | None:
    try:
        return importlib.metadata.version("quickfix")
    except importlib.metadata.PackageNotFoundError:
        return None


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args], check=True)


def build(into: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        pip("download", f"quickfix=={VERSION}", "--no-binary", ":all:", "--no-deps", "-d", tmp, "-q")
        sdist = glob.glob(os.path.join(tmp, f"quickfix-{VERSION}.tar.gz"))[0]
        with tarfile.open(sdist) as t:
            t.extractall(tmp, filter="data")
        src = os.path.join(tmp, f"quickfix-{VERSION}")
        for rel, old, new in PATCH:
            path = os.path.join(src, rel)
            text = open(path).read()
            if text.count(old) != 1:
                raise SystemExit(f"the venue's QuickFIX patch does not apply to {rel}: {old[:60]!r}")
            with open(path, "w") as f:
                f.write(text.replace(old, new))
        print(f"building QuickFIX {LOCAL} from source (about 8 minutes, once)...", flush=True)
        os.makedirs(into, exist_ok=True)
        pip("wheel", "--no-deps", "-w", into, src, "-q")
    return wheel_in(into) or ""


def wheel_in(d: str) -> str | None:
    found = sorted(glob.glob(os.path.join(d, f"quickfix-{LOCAL}-*.whl")))
    return found[-1] if found else None


def main() -> None:
    if installed() == LOCAL:
        return
    wheel = wheel_in(WHEELS) or build(WHEELS)
    if not wheel:
        raise SystemExit("QuickFIX wheel was not built")
    pip("install", "--force-reinstall", "--no-deps", "-q", wheel)
    print(f"installed QuickFIX {installed()}")


if __name__ == "__main__":
    if shutil.which("g++") is None and shutil.which("c++") is None:
        raise SystemExit("a C++ compiler is needed to build QuickFIX (Debian: apt-get install g++)")
    main()
