"""NetworkOptions: no cookie configured means a random one and a warning, never an empty cookie
(issue 10, item 11, as Ergo's node/network.go does); the values are checked when made, and
an error names the option (``NetworkOptions.pool_size``, ``AcceptorOptions.ssl``) and what it takes."""

from __future__ import annotations

import random
import ssl
from typing import Any

import pytest

from ergo import AcceptorOptions, Incorrect
from ergo.gen import errors as gerrors
from ergo.gen.options import DEFAULT_MAX_MESSAGE_SIZE, NetworkOptions


def seeded(seed: int):
    return random.Random(seed).randbytes


def test_cookie_defaults_to_none_meaning_not_configured():
    assert NetworkOptions().cookie is None


@pytest.mark.parametrize("unset", [None, ""])
def test_an_unconfigured_cookie_resolves_to_a_random_one_with_a_warning(unset):
    options = NetworkOptions(cookie=unset, max_message_size=1000, pool_size=2)
    resolved, warning = options.with_cookie(seeded(7))
    assert resolved.cookie == seeded(7)(16).hex() and len(resolved.cookie) == 32
    assert "cookie is empty" in warning and resolved.cookie not in warning  # the secret is never logged
    assert "no other node knows" in warning and "give the nodes that talk the same cookie" in warning  # what to do
    assert (resolved.max_message_size, resolved.pool_size) == (1000, 2)
    assert options.cookie == unset  # the user's options are left as they were


def test_unconfigured_cookies_differ_from_node_to_node():
    assert NetworkOptions().with_cookie()[0].cookie != NetworkOptions().with_cookie()[0].cookie


def test_a_configured_cookie_is_kept_without_a_warning():
    options = NetworkOptions(cookie="shared secret")
    assert options.with_cookie(seeded(1)) == (options, None)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"mode": "loud"},
        {"cookie": 5},
        {"cookie": b"bytes"},
        {"max_message_size": -1},
        {"max_message_size": 2**32},
        {"max_message_size": True},
        {"pool_size": 0},
        {"pool_size": 256},
    ],
)
def test_network_options_out_of_range_are_incorrect(kwargs):
    with pytest.raises(gerrors.Incorrect):
        NetworkOptions(**kwargs)


def test_network_options_at_their_edges_are_accepted():
    NetworkOptions(mode="hidden", max_message_size=0, pool_size=1)
    NetworkOptions(mode="disabled", max_message_size=2**32 - 1, pool_size=255)
    assert NetworkOptions().max_message_size == DEFAULT_MAX_MESSAGE_SIZE


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
