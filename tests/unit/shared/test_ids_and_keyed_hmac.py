"""shared/ids.random_uuid and shared/crypto.KeyedHmac: the same values as the library calls
they replace on hot paths, without giving up the GIL (docs/architecture.md § Hot paths)."""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import uuid

from shared.crypto import KeyedHmac, keyed_hash, keyed_hmac
from shared.ids import random_uuid


def test_random_uuids_are_version_4_and_never_repeat() -> None:
    ids = [random_uuid() for _ in range(5_000)]  # many buffer refills
    assert len(set(ids)) == len(ids)
    assert {u.version for u in ids} == {4}
    assert {u.variant for u in ids} == {uuid.RFC_4122}


def test_threads_draw_their_own_ids() -> None:
    drawn: list[list[uuid.UUID]] = [[] for _ in range(4)]

    def draw(into: list[uuid.UUID]) -> None:
        into.extend(random_uuid() for _ in range(1_000))

    threads = [threading.Thread(target=draw, args=(d,)) for d in drawn]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [u for d in drawn for u in d]
    assert len(set(every)) == 4_000


def test_a_forked_child_does_not_repeat_its_parents_ids() -> None:
    random_uuid()  # the parent's buffer now holds unread ids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next ids, to the parent
        os.close(read)
        os.write(write, b"".join(random_uuid().bytes for _ in range(8)))
        os._exit(0)
    os.close(write)
    child = os.read(read, 16 * 8)
    os.close(read)
    os.waitpid(pid, 0)
    parents = {random_uuid().bytes for _ in range(8)}
    childs = {child[i : i + 16] for i in range(0, len(child), 16)}
    assert len(childs) == 8
    assert not parents & childs


def test_keyed_hmac_is_hmac_sha256() -> None:
    key, message = b"k" * 32, b"tenin coupon payload"
    expected = hmac.digest(key, message, hashlib.sha256)
    signer = KeyedHmac(key)
    assert signer.digest(message) == expected
    assert signer.digest(message) == expected  # the keyed state is copied, never consumed
    assert signer.digest(b"other") == hmac.digest(key, b"other", hashlib.sha256)
    assert keyed_hmac(key) is keyed_hmac(key)
    assert keyed_hmac(b"j" * 32).digest(message) != expected


def test_keyed_hash_is_unchanged() -> None:
    """The stored member-id hashes and pseudonyms keep their values."""
    key = hmac.digest(b"secret", b"tenin/keyed-hash/member-id/v1", hashlib.sha256)
    assert (
        keyed_hash("secret", "member-id", "M1") == hmac.new(key, b"M1", hashlib.sha256).hexdigest()
    )
