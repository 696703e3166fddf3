"""Which client a failed password check is counted against (app.auth.client_address)."""

from __future__ import annotations

import ipaddress

import falcon.testing
import pytest

from app.auth import client_address
from app.config import Network

PROXY = "10.0.0.10"
TRUSTED: tuple[Network, ...] = (ipaddress.ip_network("10.0.0.10/32"),
                                ipaddress.ip_network("2001:db8:1::/64"))


def address(peer: str, forwarded: str | None = None,
            trusted: tuple[Network, ...] = TRUSTED) -> str:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    return client_address(falcon.testing.create_asgi_req(remote_addr=peer, headers=headers), trusted)


def test_without_trusted_proxies_the_peer_counts_whatever_the_header_says() -> None:
    assert address(PROXY, "203.0.113.7", trusted=()) == PROXY


def test_a_forged_header_from_an_untrusted_peer_is_ignored() -> None:
    assert address("198.51.100.9", "203.0.113.7") == "198.51.100.9"
    assert address("198.51.100.9", "10.0.0.10") == "198.51.100.9"


def test_behind_a_trusted_proxy_the_address_it_appended_counts() -> None:
    assert address(PROXY, "203.0.113.7") == "203.0.113.7"


def test_addresses_the_client_prepended_are_never_believed() -> None:
    # nginx appends the address it saw to whatever the client sent.
    assert address(PROXY, "1.2.3.4, 5.6.7.8, 203.0.113.7") == "203.0.113.7"


def test_a_chain_of_trusted_proxies_is_walked_from_the_right() -> None:
    assert address(PROXY, "1.2.3.4, 203.0.113.7, 2001:db8:1::5, 10.0.0.10") == "203.0.113.7"


def test_when_every_hop_is_trusted_the_farthest_one_counts() -> None:
    assert address(PROXY, "2001:db8:1::5, 10.0.0.10") == "2001:db8:1::5"


def test_no_header_from_a_trusted_proxy_counts_the_proxy() -> None:
    assert address(PROXY) == PROXY
    assert address(PROXY, "") == PROXY


@pytest.mark.parametrize("garbage", ["unknown", "not an address", "10.0.0.300", "_hidden",
                                     "203.0.113.7:4711", "[2001:db8::1", "[2001:db8::1]x"])
def test_a_malformed_entry_stops_the_walk_at_the_nearest_trusted_hop(garbage: str) -> None:
    assert address(PROXY, garbage) == PROXY
    assert address(PROXY, f"{garbage}, 2001:db8:1::5") == "2001:db8:1::5"
    # Entries left of the garbage are never reached.
    assert address(PROXY, f"203.0.113.7, {garbage}") == PROXY


@pytest.mark.parametrize(("forwarded", "expected"), [
    ("2001:db8:2::7", "2001:db8:2::7"),
    ("[2001:db8:2::7]", "2001:db8:2::7"),
    ("[2001:db8:2::7]:4711", "2001:db8:2::7"),
    ("2001:DB8:2:0:0:0:0:7", "2001:db8:2::7"),
    ("::ffff:203.0.113.7", "203.0.113.7"),
])
def test_ipv6_entries_are_read_and_written_in_one_canonical_form(forwarded: str, expected: str) -> None:
    assert address(PROXY, forwarded) == expected


def test_an_ipv6_proxy_and_an_ipv4_mapped_peer_are_recognised() -> None:
    assert address("2001:db8:1::10", "203.0.113.7") == "203.0.113.7"
    assert address("::ffff:10.0.0.10", "203.0.113.7") == "203.0.113.7"


def test_whitespace_and_repeated_headers_joined_by_commas_are_accepted() -> None:
    assert address(PROXY, " 1.2.3.4 ,203.0.113.7  ") == "203.0.113.7"
