"""PKCS#11 signing: keys generated inside a token, never extractable; SoftHSM2 set-up.

:class:`Pkcs11Signer` talks to any PKCS#11 module (a network HSM is the same code with
another module path, token label and PIN). Keys are secp256k1 pairs generated in the
token with ``CKA_EXTRACTABLE=False`` and ``CKA_SENSITIVE=True``; signing is ``CKM_ECDSA``
over a digest computed outside.

:func:`softhsm_token` makes the embedded default: a SoftHSM2 token whose files live
under the venue's data directory. It writes a ``softhsm2.conf`` there, points
``SOFTHSM2_CONF`` at it (SoftHSM2 reads that variable when the library initialises, so
one process uses one such token at a time), initialises the token with
``softhsm2-util`` under throw-away PINs and then changes both PINs through PKCS#11 to
random ones, so no lasting PIN ever appears on a command line. The user PIN (what
signing needs) is kept in a 0600 file beside the token; the SO PIN (what re-initialises
the token or resets the user PIN) is never stored: custody does not need it to run, and
a PIN kept beside the token would be a second key to it. (An earlier version kept
``so.pin``; it is overwritten and removed when the token is next opened.)

Module choice (:func:`find_softhsm_module`): ``VENUE_PKCS11_MODULE`` names the module;
if it names a file that does not exist, that is an error (never a silent fall back to
the software keystore). Without it, the SoftHSM2 module at its Debian paths; with none
there the caller falls back to the software keystore and says so loudly.

What it does not do: BIP32 derivation (SoftHSM2 has no such mechanism; see
:mod:`custody.bitcoin` for how Bitcoin deposit keys are kept).
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field

import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from custody import secp256k1
from custody.errors import ConfigError, SignerError
from custody.signer import Signer

SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
)
TOKEN_LABEL = "venue-custody"


MODULE_ENV = "VENUE_PKCS11_MODULE"


@dataclass(frozen=True)
class TokenConfig:
    module: str
    token_label: str
    pin: str = field(repr=False)  # never in a log line or a traceback's locals
    softhsm_conf: str = ""  # set for an embedded SoftHSM2 token


def find_softhsm_module(candidates: tuple[str, ...] = SOFTHSM_MODULES) -> str | None:
    """The PKCS#11 module to use: ``VENUE_PKCS11_MODULE`` if set (a path that does not
    exist raises :class:`ConfigError`), else SoftHSM2 at one of ``candidates``, else None
    (the caller then falls back to the software keystore, loudly)."""
    env = os.environ.get(MODULE_ENV)
    if env:
        if not os.path.isfile(env):
            raise ConfigError(f"{MODULE_ENV}={env}: no such PKCS#11 module (custody will not fall back to the "
                              f"software keystore when a module is named; fix the path or unset {MODULE_ENV})")
        return env
    for path in candidates:
        if os.path.exists(path):
            return path
    return None


def forget_so_pin(hsm_dir: str) -> bool:
    """Overwrite and remove an SO PIN file an earlier version kept; True if there was one."""
    path = os.path.join(hsm_dir, "so.pin")
    if not os.path.exists(path):
        return False
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.write(secrets.token_bytes(max(size, 32)))
        f.flush()
        os.fsync(f.fileno())
    os.remove(path)
    return True


def _write_private(path: str, text: str) -> None:
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(path + ".tmp", path)


def softhsm_token(hsm_dir: str, module: str) -> TokenConfig:
    """The embedded SoftHSM2 token under ``hsm_dir``, initialised on first use."""
    os.makedirs(hsm_dir, mode=0o700, exist_ok=True)
    token_dir = os.path.join(hsm_dir, "tokens")
    os.makedirs(token_dir, mode=0o700, exist_ok=True)
    conf = os.path.join(hsm_dir, "softhsm2.conf")
    if not os.path.exists(conf):
        _write_private(conf, f"directories.tokendir = {token_dir}\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = conf
    pin_file = os.path.join(hsm_dir, "user.pin")
    forget_so_pin(hsm_dir)
    if os.path.exists(pin_file):
        with open(pin_file) as f:
            return TokenConfig(module, TOKEN_LABEL, f.read().strip(), conf)
    if os.listdir(token_dir):
        raise SignerError(f"{token_dir} holds a token but its PIN file {pin_file} is missing")
    util = shutil.which("softhsm2-util")
    if util is None:
        raise SignerError("softhsm2-util is not installed (Debian package softhsm2)")
    tmp_so, tmp_user = secrets.token_hex(8), secrets.token_hex(8)
    r = subprocess.run([util, "--init-token", "--free", "--label", TOKEN_LABEL, "--so-pin", tmp_so, "--pin", tmp_user],
                       env={**os.environ, "SOFTHSM2_CONF": conf}, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise SignerError(f"softhsm2-util could not initialise the token: {r.stderr.strip() or r.stdout.strip()}")
    user_pin = secrets.token_hex(16)
    lib = _library(module)
    token = lib.get_token(token_label=TOKEN_LABEL)
    with token.open(rw=True, user_pin=tmp_user) as s:
        s.set_pin(tmp_user, user_pin)
    with token.open(rw=True, so_pin=tmp_so) as s:
        s.set_pin(tmp_so, secrets.token_hex(16))  # the SO PIN leaves this function nowhere
    _write_private(pin_file, user_pin)
    return TokenConfig(module, TOKEN_LABEL, user_pin, conf)


def _library(module: str) -> pkcs11.lib:
    """The module, (re)initialised so that it reads the current SOFTHSM2_CONF. Any
    earlier session of this process on this module is closed by the re-initialisation."""
    lib = pkcs11.lib(module)
    if lib.initialized:
        lib.reinitialize()
    return lib


class Pkcs11Signer(Signer):
    kind = "pkcs11"

    def __init__(self, cfg: TokenConfig) -> None:
        if cfg.softhsm_conf:
            os.environ["SOFTHSM2_CONF"] = cfg.softhsm_conf
        try:
            self._lib = _library(cfg.module)
            self._token = self._lib.get_token(token_label=cfg.token_label)
            self._session = self._token.open(rw=True, user_pin=cfg.pin)
        except pkcs11.PKCS11Error as e:
            raise SignerError(f"cannot open PKCS#11 token {cfg.token_label!r} in {cfg.module}: {type(e).__name__} {e}") from e
        self.token_label = cfg.token_label
        self._priv: dict[str, pkcs11.PrivateKey] = {}

    def _private(self, label: str) -> pkcs11.PrivateKey | None:
        key = self._priv.get(label)
        if key is None:
            try:
                key = self._session.get_key(object_class=ObjectClass.PRIVATE_KEY, key_type=KeyType.EC, label=label)
            except pkcs11.NoSuchKey:
                return None
            self._priv[label] = key
        return key

    def generate(self, label: str) -> bytes:
        if self.public_key(label) is not None:
            raise SignerError(f"a key labelled {label!r} exists already")
        params = self._session.create_domain_parameters(
            KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(secp256k1.CURVE_OID)}, local=True)
        ident = label.encode()
        pub, priv = params.generate_keypair(
            store=True, label=label, id=ident,
            public_template={Attribute.VERIFY: True, Attribute.TOKEN: True},
            private_template={Attribute.SIGN: True, Attribute.TOKEN: True, Attribute.PRIVATE: True,
                              Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False},
        )
        self._priv[label] = priv
        return secp256k1.point_from_ec_point(pub[Attribute.EC_POINT])

    def public_key(self, label: str) -> bytes | None:
        try:
            pub = self._session.get_key(object_class=ObjectClass.PUBLIC_KEY, key_type=KeyType.EC, label=label)
        except pkcs11.NoSuchKey:
            return None
        except pkcs11.MultipleObjectsReturned as e:
            raise SignerError(f"the token holds several keys labelled {label!r}") from e
        return secp256k1.point_from_ec_point(pub[Attribute.EC_POINT])

    def is_extractable(self, label: str) -> bool:
        """What the token says about the private key (custody only creates False)."""
        key = self._private(label)
        if key is None:
            raise SignerError(f"no key labelled {label!r}")
        return bool(key[Attribute.EXTRACTABLE]) or not bool(key[Attribute.SENSITIVE])

    def sign_digest(self, label: str, digest: bytes) -> tuple[int, int]:
        key = self._private(label)
        if key is None:
            raise SignerError(f"no key labelled {label!r}")
        try:
            raw = key.sign(digest, mechanism=Mechanism.ECDSA)
        except pkcs11.PKCS11Error as e:
            raise SignerError(f"the token refused to sign with {label!r}: {type(e).__name__}") from e
        return secp256k1.split_raw(bytes(raw))

    def labels(self) -> list[str]:
        return sorted(k.label for k in self._session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY}))

    def put_secret(self, label: str, data: bytes) -> None:
        if self.get_secret(label) is not None:
            raise SignerError(f"a secret labelled {label!r} exists already")
        self._session.create_object({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label, Attribute.VALUE: data,
                                     Attribute.TOKEN: True, Attribute.PRIVATE: True, Attribute.MODIFIABLE: False})

    def get_secret(self, label: str) -> bytes | None:
        objs = list(self._session.get_objects({Attribute.CLASS: ObjectClass.DATA, Attribute.LABEL: label}))
        if not objs:
            return None
        return bytes(objs[0][Attribute.VALUE])

    def close(self) -> None:
        try:
            self._session.close()
        except pkcs11.PKCS11Error:
            pass
