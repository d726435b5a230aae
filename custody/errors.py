"""Custody's exceptions: one root, leaves that also subclass the matching builtin.

A business refusal (a velocity breach, an unapproved address, a self-approval) is not an
exception: the service returns it as an :class:`custody.service.Outcome` with a code and
a reason. Exceptions are for broken parts (a token that will not open, a node that does
not answer) and for bugs.
"""
from __future__ import annotations


class CustodyError(Exception):
    """Root of every error custody raises on purpose."""


class ConfigError(CustodyError, ValueError):
    """The custody configuration cannot work (unknown asset, impossible decimals, ...)."""


class SignerError(CustodyError, RuntimeError):
    """The signer (PKCS#11 token or software keystore) failed or refused."""


class ChainError(CustodyError, RuntimeError):
    """A chain node failed or answered something custody cannot use."""


class InvalidInput(CustodyError, ValueError):
    """A value from outside (CLI, API) that custody cannot accept. Carries a short code."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text
