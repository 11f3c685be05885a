"""Network options a newcomer gets wrong are refused when made, with ``Incorrect`` naming
the option (``NetworkOptions.pool_size``, ``AcceptorOptions.ssl``) and what it takes."""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from ergo import AcceptorOptions, Incorrect, NetworkOptions


@pytest.mark.parametrize(("field", "value"), [
    ("mode", "on"),
    ("cookie", 123),
    ("max_message_size", -1),
    ("max_message_size", "1M"),
    ("pool_size", 0),
    ("pool_size", 3.0),
    ("flags", "all"),
    ("heartbeat_interval", 0),
    ("registrar_port", "4499"),
    ("connect_timeout", None),
    ("acceptors", [("localhost", 11144)]),
    ("ssl", True),  # asyncio reads True as "a default context"; these options never did
    ("ssl", "cert.pem"),
])
def test_a_bad_network_option_is_refused_naming_the_option(field: str, value: Any) -> None:
    with pytest.raises(Incorrect, match=rf"^NetworkOptions\.{field}\b"):
        NetworkOptions(**{field: value})


@pytest.mark.parametrize(("field", "value"), [
    ("host", ""),
    ("port", 70000),
    ("port_range", 0),
    ("max_message_size", -1),
    ("flags", "all"),
    ("ssl", "cert.pem"),
    ("ssl", object()),
])
def test_a_bad_acceptor_option_is_refused_naming_the_option(field: str, value: Any) -> None:
    with pytest.raises(Incorrect, match=rf"^AcceptorOptions\.{field}\b"):
        AcceptorOptions(**{field: value})


def test_a_tls_context_of_the_wrong_side_is_refused_saying_which_side_it_needs() -> None:
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    client = ssl.create_default_context()
    with pytest.raises(Incorrect, match=r"NetworkOptions\.ssl is a server context .* client one"):
        NetworkOptions(ssl=server)
    with pytest.raises(Incorrect, match=r"AcceptorOptions\.ssl is a client context .* server one"):
        AcceptorOptions(ssl=client)
    assert NetworkOptions(ssl=client).ssl is client
    assert AcceptorOptions(ssl=server).ssl is server
