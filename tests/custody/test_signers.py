"""Signers: keys made inside a real SoftHSM2 token (non-extractable), signatures that
recover to the token's key, and the software keystore behind the same interface."""
from __future__ import annotations

import hashlib
import os
import threading

import pkcs11
import pytest
from eth_keys import keys as eth_keys

from custody import secp256k1
from custody.errors import ConfigError, SignerError
from custody.pkcs11_signer import Pkcs11Signer, TokenConfig, find_softhsm_module, softhsm_token
from custody.signer import SignerWorker
from custody.software_signer import SoftwareSigner


def _token_worker(tmp_path) -> SignerWorker:
    module = find_softhsm_module()
    assert module is not None
    hsm = os.path.join(str(tmp_path), "data", "custody", "hsm")
    return SignerWorker(lambda: Pkcs11Signer(softhsm_token(hsm, module)))


def test_token_lives_under_the_data_dir_and_pin_files_are_private(tmp_path) -> None:
    w = _token_worker(tmp_path)
    try:
        w.ensure_key("k")
    finally:
        w.close()
    hsm = tmp_path / "data" / "custody" / "hsm"
    assert os.environ["SOFTHSM2_CONF"] == str(hsm / "softhsm2.conf")
    assert any((hsm / "tokens").iterdir()), "the token's files are under the data directory"
    assert (hsm / "user.pin").stat().st_mode & 0o077 == 0
    assert not (hsm / "so.pin").exists()  # the SO PIN is not kept anywhere
    assert all(not p.name.endswith(".pin") or p.name == "user.pin" for p in hsm.iterdir())


def test_an_so_pin_file_left_by_an_earlier_version_is_removed(tmp_path) -> None:
    w = _token_worker(tmp_path)
    w.close()
    hsm = tmp_path / "data" / "custody" / "hsm"
    (hsm / "so.pin").write_text("0123456789abcdef")
    w = _token_worker(tmp_path)
    try:
        assert not (hsm / "so.pin").exists()
        w.ensure_key("still-works")
    finally:
        w.close()


def test_the_pin_is_not_in_a_token_config_repr() -> None:
    tc = TokenConfig("/usr/lib/softhsm/libsofthsm2.so", "venue-custody", "s3cret-pin-4711")
    assert "s3cret-pin-4711" not in repr(tc) and "s3cret-pin-4711" not in str(tc)


def test_a_named_module_that_does_not_exist_is_an_error_not_a_fallback(tmp_path, monkeypatch) -> None:
    from venue.core import Venue
    from custody.service import CustodyService

    missing = str(tmp_path / "no-such-hsm.so")
    monkeypatch.setenv("VENUE_PKCS11_MODULE", missing)
    with pytest.raises(ConfigError, match="no-such-hsm.so"):
        find_softhsm_module()
    v = Venue(str(tmp_path / "venue"), fsync=False)
    v.open()
    v.start()
    try:
        svc = CustodyService(v)
        with pytest.raises(ConfigError, match="will not fall back"):
            svc.open()
        svc.stop()
        assert not (tmp_path / "venue" / "custody" / "keystore").exists()
    finally:
        v.stop()
    monkeypatch.delenv("VENUE_PKCS11_MODULE")
    assert find_softhsm_module(candidates=()) is None  # nothing named, nothing installed: the caller falls back


def test_keys_are_generated_in_the_token_and_cannot_be_extracted(tmp_path) -> None:
    w = _token_worker(tmp_path)
    try:
        pub = w.ensure_key("eth/hot")
        assert w.ensure_key("eth/hot") == pub  # the same key the second time
        signer = w.signer
        assert isinstance(signer, Pkcs11Signer)

        def read_private(s: Pkcs11Signer) -> bytes:
            key = s._session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="eth/hot")
            return key[pkcs11.Attribute.VALUE]

        with pytest.raises(pkcs11.AttributeSensitive):
            w._call(read_private)
        assert w._call(lambda s: s.is_extractable("eth/hot")) is False
    finally:
        w.close()


def test_signatures_are_low_s_and_recover_to_the_token_key(tmp_path) -> None:
    w = _token_worker(tmp_path)
    try:
        pub = w.ensure_key("k1")
        want = eth_keys.PublicKey(pub[1:])
        for i in range(40):
            digest = hashlib.sha256(f"message {i}".encode()).digest()
            v, r, s = w.sign_recoverable("k1", digest)
            assert s <= secp256k1.HALF_N
            assert v in (0, 1)
            assert eth_keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest) == want
            assert secp256k1.verify(pub, digest, r, s)
            assert not secp256k1.verify(pub, hashlib.sha256(b"other").digest(), r, s)
    finally:
        w.close()


def test_signing_with_an_unknown_key_is_refused(tmp_path) -> None:
    w = _token_worker(tmp_path)
    try:
        with pytest.raises(SignerError):
            w.sign("nope", bytes(32))
        with pytest.raises(SignerError):
            w.sign("nope", b"short")
    finally:
        w.close()


def test_many_threads_share_the_one_signer_worker(tmp_path) -> None:
    w = _token_worker(tmp_path)
    errors: list[BaseException] = []
    try:
        pub = w.ensure_key("k")

        def sign_many(n: int) -> None:
            try:
                for i in range(25):
                    d = hashlib.sha256(f"{n}-{i}".encode()).digest()
                    r, s = w.sign("k", d)
                    assert secp256k1.verify(pub, d, r, s)
            except BaseException as e:  # collected and asserted below
                errors.append(e)

        threads = [threading.Thread(target=sign_many, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert w.signatures == 150
    finally:
        w.close()


def test_token_keeps_keys_across_reopening(tmp_path) -> None:
    w = _token_worker(tmp_path)
    pub = w.ensure_key("persistent")
    w.close()
    w2 = _token_worker(tmp_path)
    try:
        assert w2.public_key("persistent") == pub
        assert "persistent" in w2.labels()
    finally:
        w2.close()


def test_software_keystore_is_the_same_interface_and_is_encrypted(tmp_path) -> None:
    ks = str(tmp_path / "keystore")
    w = SignerWorker(lambda: SoftwareSigner(ks, password="correct horse"))
    pub = w.ensure_key("eth/hot")
    digest = hashlib.sha256(b"x").digest()
    v, r, s = w.sign_recoverable("eth/hot", digest)
    assert eth_keys.Signature(vrs=(v, r, s)).recover_public_key_from_msg_hash(digest) == eth_keys.PublicKey(pub[1:])
    w.put_secret("seed", b"\x01" * 32)
    w.close()
    raw = (tmp_path / "keystore" / "keystore.json").read_text()
    assert pub.hex() not in raw and "0101010101" not in raw
    again = SignerWorker(lambda: SoftwareSigner(ks, password="correct horse"))
    try:
        assert again.public_key("eth/hot") == pub
        assert again.get_secret("seed") == b"\x01" * 32
    finally:
        again.close()
    with pytest.raises(SignerError):
        SignerWorker(lambda: SoftwareSigner(ks, password="wrong"))
