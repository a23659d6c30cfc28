"""Random (version 4) UUIDs for the ids tenin mints: decisions, events, deliveries.

`random_uuid()` is `uuid.uuid4()` drawn from a per-thread buffer of `os.urandom` bytes, one
read per 256 ids. The bytes are as random as uuid4's; what changes is how often the process
asks the kernel. CPython's `os.urandom` lets go of the GIL around its system call, so in a
worker whose threads share the GIL (a decision loop and its writer thread, a consumer and
its delivery loop) every uuid4 hands the GIL to the busy thread and waits to get it back:
about 0.3 ms a call against a busy thread, 2.8 µs alone (docs/architecture.md § Hot paths).
A child process after `fork` starts with an empty buffer, so it never repeats its parent's ids.
"""

from __future__ import annotations

import os
import threading
import uuid

_IDS_PER_READ = 256
_UUID_BYTES = 16


class _RandomBytes(threading.local):
    """This thread's unread random bytes."""

    def __init__(self) -> None:
        self.raw = b""
        self.at = 0


_random = _RandomBytes()


def _forget_after_fork() -> None:
    global _random
    _random = _RandomBytes()


os.register_at_fork(after_in_child=_forget_after_fork)


def random_uuid() -> uuid.UUID:
    """A new random (version 4) UUID."""
    buffer = _random
    at = buffer.at
    if at >= len(buffer.raw):
        buffer.raw, at = os.urandom(_UUID_BYTES * _IDS_PER_READ), 0
    buffer.at = at + _UUID_BYTES
    return uuid.UUID(bytes=buffer.raw[at : at + _UUID_BYTES], version=4)
