"""The signer interface, and the one worker thread every signature goes through.

A :class:`Signer` keeps secp256k1 keys by label, creates them where it keeps them and
signs 32-byte digests with them; it never hands a private key out. Two kinds exist:
:class:`custody.pkcs11_signer.Pkcs11Signer` (SoftHSM2 or any PKCS#11 module) and
:class:`custody.software_signer.SoftwareSigner` (an encrypted file, for machines without
a PKCS#11 module).

SoftHSM2 fails when two threads use one library handle at once, so custody never calls a
signer directly: :class:`SignerWorker` owns the signer on its own thread (it is even
created there) and the rest of custody queues requests to it. The worker also turns raw
signatures into what the chains need: low-s, and the Ethereum recovery id.
"""
from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from concurrent.futures import Future
from typing import Any, Callable

from custody import secp256k1
from custody.errors import SignerError


class Signer(ABC):
    """Keys by label, inside whatever this signer protects them with."""

    kind: str = "abstract"

    @abstractmethod
    def generate(self, label: str) -> bytes:
        """Create a new secp256k1 key under ``label``; return its 65-byte public point."""

    @abstractmethod
    def public_key(self, label: str) -> bytes | None:
        """The 65-byte uncompressed public point of ``label``, or None if there is none."""

    @abstractmethod
    def sign_digest(self, label: str, digest: bytes) -> tuple[int, int]:
        """ECDSA over a 32-byte digest: (r, s), not yet normalised."""

    @abstractmethod
    def labels(self) -> list[str]:
        """The labels of the keys this signer holds."""

    @abstractmethod
    def put_secret(self, label: str, data: bytes) -> None:
        """Keep a small secret (e.g. a BIP32 seed) protected by the signer."""

    @abstractmethod
    def get_secret(self, label: str) -> bytes | None:
        """A secret kept with :meth:`put_secret`, or None."""

    def close(self) -> None:
        """Release the token session or the keystore."""


class SignerWorker:
    """One thread owns the signer; every call from other threads is queued to it.

    ``factory`` builds the signer on the worker thread (a PKCS#11 login belongs to the
    thread that did it on some modules). Public keys are cached, so looking one up again
    costs no queue round trip."""

    def __init__(self, factory: Callable[[], Signer], name: str = "custody-signer") -> None:
        self._q: queue.SimpleQueue[tuple[Callable[[Signer], Any], Future[Any]] | None] = queue.SimpleQueue()
        self._pub: dict[str, bytes] = {}
        self._ready: Future[Signer] = Future()
        self._thread = threading.Thread(target=self._run, args=(factory,), name=name, daemon=True)
        self._thread.start()
        self.signer = self._ready.result(timeout=60)  # raises what the factory raised
        self.kind = self.signer.kind
        self.signatures = 0

    def _run(self, factory: Callable[[], Signer]) -> None:
        try:
            signer = factory()
        except BaseException as e:  # hand the failure to the constructor
            self._ready.set_exception(e)
            return
        self._ready.set_result(signer)
        while True:
            item = self._q.get()
            if item is None:
                break
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(signer))
            except BaseException as e:
                fut.set_exception(e)
        try:
            signer.close()
        except Exception:
            pass

    def _call(self, fn: Callable[[Signer], Any], timeout: float = 60.0) -> Any:
        if not self._thread.is_alive():
            raise SignerError("the signer worker has stopped")
        fut: Future[Any] = Future()
        self._q.put((fn, fut))
        return fut.result(timeout=timeout)

    # -- keys ------------------------------------------------------------------------
    def ensure_key(self, label: str) -> bytes:
        """The public point of ``label``, creating the key in the signer if it is new."""
        pub = self._pub.get(label)
        if pub is None:
            pub = self._call(lambda s: s.public_key(label) or s.generate(label))
            self._pub[label] = pub
        return pub

    def public_key(self, label: str) -> bytes | None:
        pub = self._pub.get(label)
        if pub is None:
            pub = self._call(lambda s: s.public_key(label))
            if pub is not None:
                self._pub[label] = pub
        return pub

    def labels(self) -> list[str]:
        return list(self._call(lambda s: s.labels()))

    def put_secret(self, label: str, data: bytes) -> None:
        self._call(lambda s: s.put_secret(label, data))

    def get_secret(self, label: str) -> bytes | None:
        return self._call(lambda s: s.get_secret(label))

    # -- signing ---------------------------------------------------------------------
    def sign(self, label: str, digest: bytes) -> tuple[int, int]:
        """(r, s) with low s, checked against the key's public point."""
        if len(digest) != 32:
            raise SignerError("a digest to sign must be 32 bytes")
        pub = self.public_key(label)
        if pub is None:
            raise SignerError(f"no key labelled {label!r}")
        r, s = secp256k1.low_s(*self._call(lambda sg: sg.sign_digest(label, digest)))
        self.signatures += 1
        if not secp256k1.verify(pub, digest, r, s):
            raise SignerError(f"the signer returned a signature that does not verify under {label!r}")
        return r, s

    def sign_recoverable(self, label: str, digest: bytes) -> tuple[int, int, int]:
        """(v, r, s) for Ethereum: low s and the recovery id (0/1) of the key."""
        r, s = self.sign(label, digest)
        pub = self._pub[label]
        return secp256k1.recovery_id(digest, r, s, pub), r, s

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout=30)
