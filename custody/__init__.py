"""Custody: HSM-held keys, deposit addresses, chain watchers, withdrawals with policy
and approvals, and the chain adapters (Ethereum via web3, Bitcoin via bitcoinlib).
Custody changes balances only through the ledger's funding commands."""
