"""The Kafka clients' selector (shared/bus/profiles.py): the standard selector's answers,
without building a message from the socket's repr when a socket is not registered."""

from __future__ import annotations

import selectors
import socket
from collections.abc import Iterator
from unittest import mock

import pytest

from shared.bus.profiles import KAFKA_PROFILE, TANSU_PROFILE, BrokerProfile, QuietMissSelector

# A socket's repr made to fail: the selector must not build it.
NO_REPR = mock.patch.object(socket.socket, "__repr__", side_effect=AssertionError("repr"))


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    left, right = socket.socketpair()
    yield left, right
    left.close()
    right.close()


def test_a_registered_socket_gets_its_key(pair: tuple[socket.socket, socket.socket]) -> None:
    left, _ = pair
    with QuietMissSelector() as selector:
        registered = selector.register(left, selectors.EVENT_READ, "data")
        assert selector.get_key(left) is registered
        assert selector.get_key(left.fileno()) is registered  # by descriptor, as the standard


def test_an_unregistered_socket_raises_key_error_without_its_repr(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, right = pair
    with QuietMissSelector() as selector:
        selector.register(right, selectors.EVENT_READ)
        with NO_REPR, pytest.raises(KeyError) as raised:
            selector.get_key(left)
        assert raised.value.args == (left.fileno(),)
        selector.unregister(right)
        with pytest.raises(KeyError):
            selector.get_key(right)


def test_the_standard_selector_builds_the_repr_this_one_skips(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    left, _ = pair
    with (
        selectors.DefaultSelector() as selector,
        NO_REPR,
        pytest.raises(AssertionError, match="repr"),
    ):
        selector.get_key(left)


@pytest.mark.parametrize("profile", [KAFKA_PROFILE, TANSU_PROFILE], ids=lambda p: p.name)
def test_both_clients_of_both_brokers_use_it(profile: BrokerProfile) -> None:
    assert profile.producer["selector"] is QuietMissSelector
    assert profile.consumer["selector"] is QuietMissSelector
