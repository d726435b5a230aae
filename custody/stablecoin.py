"""The venue's test stablecoin: a small ERC-20 in Vyper, compiled offline with ``vyper``.

A USDC-like token (6 decimals) with a minter, used on the embedded chain and on dev
nodes (anvil). On a real network the venue is configured with the real token's address
instead; nothing else in custody depends on this contract beyond the ERC-20 interface
(``transfer``, ``balanceOf`` and the ``Transfer`` event).
"""
from __future__ import annotations

import functools
import warnings
from typing import Any

from eth_utils import keccak

VYPER_SOURCE = '''# pragma version ~=0.4.0
from ethereum.ercs import IERC20
implements: IERC20

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
minter: public(address)

@deploy
def __init__(_name: String[32], _symbol: String[8], _decimals: uint8):
    self.name = _name
    self.symbol = _symbol
    self.decimals = _decimals
    self.minter = msg.sender

@external
def transfer(_to: address, _value: uint256) -> bool:
    self.balanceOf[msg.sender] -= _value
    self.balanceOf[_to] += _value
    log Transfer(sender=msg.sender, receiver=_to, value=_value)
    return True

@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    self.allowance[_from][msg.sender] -= _value
    self.balanceOf[_from] -= _value
    self.balanceOf[_to] += _value
    log Transfer(sender=_from, receiver=_to, value=_value)
    return True

@external
def approve(_spender: address, _value: uint256) -> bool:
    self.allowance[msg.sender][_spender] = _value
    log Approval(owner=msg.sender, spender=_spender, value=_value)
    return True

@external
def mint(_to: address, _value: uint256):
    assert msg.sender == self.minter, "only the minter mints"
    self.totalSupply += _value
    self.balanceOf[_to] += _value
    log Transfer(sender=empty(address), receiver=_to, value=_value)
'''

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
TRANSFER_SELECTOR = keccak(text="transfer(address,uint256)")[:4]


@functools.lru_cache(maxsize=1)
def compiled() -> dict[str, Any]:
    """ABI and bytecode, compiled in-process by the vyper package (no download)."""
    from vyper.compiler import compile_code

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = compile_code(VYPER_SOURCE, output_formats=["abi", "bytecode"])
    return {"abi": out["abi"], "bytecode": out["bytecode"]}
