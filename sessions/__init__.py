"""Everything FIX: the QuickFIX application, logon and entitlements, the order-entry,
drop-copy and market-data session handlers, and the FIX <-> domain codec.

QuickFIX callbacks only decode and hand commands to the venue's sequencer; replies
travel back from durable engine events. Nothing here touches engine state directly.
"""
