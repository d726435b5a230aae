"""Gateway tests that need a venue of their own (TLS, brute-force limits). Each starts and
stops its venue; no other venue runs in this process meanwhile (QuickFIX registers
sessions process-wide)."""
from __future__ import annotations

import datetime
import itertools
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.sessions.conftest import start_venue, stop_venue
from tests.sessions.fixclients import RawClient, order

_ids = itertools.count(1)


def cid(p: str = "g") -> str:
    return f"{p}{next(_ids)}"


def test_repeated_failed_logons_lock_that_session_out_for_a_while(tmp_path):
    r = start_venue(str(tmp_path / "v"))
    try:
        gw = r.server.gateways["order_entry"]
        for _ in range(gw.max_failures):
            c = RawClient(r.oe, "ALPHA-OE")
            c.logon("alpha", "wrong", expect=False)
            assert c.expect("5")[58] == "wrong username or password"
            c.close()
        c = RawClient(r.oe, "ALPHA-OE")
        c.logon("alpha", "alpha-demo", expect=False)  # right password, still refused for now
        assert "too many failed logons" in c.expect("5")[58]
        assert c.closed()
        other = RawClient(r.oe, "BETA-OE")  # same address, another firm: not locked out
        other.logon("beta", "beta-demo")
        other.close()
        gw.forgive()
        c = RawClient(r.oe, "ALPHA-OE")
        c.logon("alpha", "alpha-demo")
        c.close()
    finally:
        stop_venue(r)


# ------------------------------------------------------------------------------ TLS
def _self_signed(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_tls_on_the_public_port(tmp_path):
    cert, key = _self_signed(tmp_path)
    r = start_venue(str(tmp_path / "v"), tls_cert=cert, tls_key=key)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        c = RawClient(r.oe, "ALPHA-OE", tls=ctx)
        c.logon("alpha", "alpha-demo")
        clid = cid()
        c.send("D", order(clid, "BTC-USD", "1", "0.01", "1000.00"))
        assert c.expect("8", X11=clid)[150] == "0"
        c.close()
        plain = RawClient(r.oe, "ALPHA-OE")
        plain.logon("alpha", "alpha-demo", expect=False)
        assert plain.closed()  # no TLS, no session
    finally:
        stop_venue(r)


