"""The venue's domain core: instruments, values, orders, the order book, matching,
the ledger, the journal and the sequencer that feeds one deterministic engine.

Nothing here knows FIX, SQL, Redis or a blockchain; those live at the edges
(``sessions/``, ``marketdata/``, ``custody/``, ``cli/``) and talk to the core only in
commands (in) and events (out). Prices and quantities are integers (ticks and lots);
``Decimal`` appears only in the conversion helpers of :mod:`venue.instruments`.
"""
