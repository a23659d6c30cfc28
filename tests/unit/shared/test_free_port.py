"""`free_port`: ports for local servers that no outgoing connection takes first."""

from __future__ import annotations

import socket

from shared.embedded import _ephemeral_low, free_port


def test_ports_come_from_below_the_ephemeral_range_and_are_bindable() -> None:
    low = _ephemeral_low()
    ports = [free_port() for _ in range(50)]
    assert all(1024 <= port < low for port in ports)
    for port in ports[:5]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # raises if something holds it


def test_one_process_never_gets_the_same_port_twice() -> None:
    ports = [free_port() for _ in range(300)]
    assert len(set(ports)) == len(ports)
