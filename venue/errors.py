"""The core's exceptions.

A business refusal is never an exception inside the engine: it is a value (a
:class:`venue.types.Reject` code and a text) that becomes an event. Exceptions are for
bad input at the edges (:class:`InvalidValue`) and for bugs (:class:`EngineBug`), which
stop the engine rather than letting it run on in a state nobody checked.
"""


class VenueError(Exception):
    """Root of every error the venue raises on purpose."""


class InvalidValue(VenueError, ValueError):
    """A value from outside (FIX, CLI, config) that cannot be represented exactly:
    an off-tick price, an off-lot quantity, a malformed number. Carries the reject code
    the edge should answer with."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class EngineBug(VenueError, RuntimeError):
    """An invariant of the engine does not hold. The engine must stop."""


class JournalError(VenueError, IOError):
    """The journal cannot be read or written safely (corruption, sequence gap)."""


class CorruptJournal(JournalError):
    """A record inside the journal (not its torn tail) fails its checksum or framing."""
