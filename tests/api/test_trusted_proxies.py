"""Forwarded headers count only from a trusted proxy (issue 6): `X-Forwarded-For/-Host/-Proto/
-Port` and `X-Real-IP` from any other peer change neither links, nor the address the IP
allow-list checks, nor the audit log's `ip`.

The session's client connects from 127.0.0.1, a trusted proxy by default; the clients here
connect from elsewhere, or to an app with other trusted proxies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.conftest import account_body
from tests.conftest import (
    BASE_URL,
    RESTRICTED,
    RESTRICTED_PASSWORD,
    Api,
    Db,
    client_for,
    settings_for,
)

ACCOUNTS = "/api/rest/admin/accounts"
AUTH = "/api/rest/admin/auth"
OUTSIDER = "192.0.2.10"  # a client connecting directly, not through a proxy
PROXY = "172.16.0.2"  # the load balancer of the configured app
FORWARDED_URL = {
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "public.example.org",
    "X-Forwarded-Port": "8443",
}


@pytest.fixture(scope="module")
def outsider(database_url: str, admin_id: int) -> Iterator[TestClient]:
    with client_for(settings_for(database_url), peer=OUTSIDER) as client:
        yield client


@pytest.fixture(scope="module")
def behind_balancer(database_url: str, admin_id: int) -> Iterator[TestClient]:
    """An app whose only trusted proxies are 172.16.0.0/24, reached through one of them."""
    settings = settings_for(database_url, trusted_proxies=(ipaddress.ip_network("172.16.0.0/24"),))
    with client_for(settings, peer=PROXY) as client:
        yield client


@pytest.fixture(scope="module")
def loopback_of_balanced_app(database_url: str, admin_id: int) -> Iterator[TestClient]:
    """The same configuration, reached from 127.0.0.1, which it does not trust."""
    settings = settings_for(database_url, trusted_proxies=(ipaddress.ip_network("172.16.0.0/24"),))
    with client_for(settings, peer="127.0.0.1") as client:
        yield client


@pytest.fixture
def account(make_account: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    return make_account()


def self_link(api: Api, account_id: str, headers: dict[str, str]) -> str:
    response = api.get(f"{ACCOUNTS}/{account_id}", headers=headers)
    assert response.status_code == 200, response.text
    link: str = response.json()["data"]["links"]["self"]
    return link


def audit_ips(db: Db) -> list[str]:
    rows = db.fetch("SELECT host(ip) AS ip FROM audit_log WHERE item_type = 'Account' ORDER BY id")
    return [row["ip"] for row in rows]


def restricted_login(client: TestClient, forwarded_for: str) -> Any:
    return client.post(
        AUTH,
        json={"auth": {"username": RESTRICTED, "password": RESTRICTED_PASSWORD}},
        headers={"X-Forwarded-For": forwarded_for},
    )


# -- links ------------------------------------------------------------------------------------


def test_an_untrusted_peers_forwarded_host_and_proto_do_not_change_links(
    api: Api, outsider: TestClient, account: dict[str, Any]
) -> None:
    direct = Api(outsider, api.token)

    own = f"{BASE_URL}{ACCOUNTS}/{account['id']}"
    assert self_link(direct, account["id"], FORWARDED_URL) == own
    # the same headers from the trusted proxy do
    assert self_link(api, account["id"], FORWARDED_URL) == (
        f"https://public.example.org:8443{ACCOUNTS}/{account['id']}"
    )


def test_an_untrusted_peers_forwarded_headers_do_not_change_location(
    api: Api, outsider: TestClient, contractor_id: int
) -> None:
    response = Api(outsider, api.token).post(
        ACCOUNTS, account_body(contractor_id), headers=FORWARDED_URL
    )

    assert response.status_code == 201, response.text
    assert response.headers["location"].startswith(f"{BASE_URL}{ACCOUNTS}/")


def test_configured_proxies_are_trusted_and_loopback_no_longer(
    api: Api,
    behind_balancer: TestClient,
    loopback_of_balanced_app: TestClient,
    account: dict[str, Any],
) -> None:
    proxied = self_link(Api(behind_balancer, api.token), account["id"], FORWARDED_URL)
    local = self_link(Api(loopback_of_balanced_app, api.token), account["id"], FORWARDED_URL)

    assert proxied == f"https://public.example.org:8443{ACCOUNTS}/{account['id']}"
    assert local == f"{BASE_URL}{ACCOUNTS}/{account['id']}"


# -- the audit log ----------------------------------------------------------------------------


def test_an_untrusted_peers_x_real_ip_is_not_audited(
    api: Api, db: Db, outsider: TestClient, contractor_id: int
) -> None:
    spoofed = {"X-Real-IP": "203.0.113.9", "X-Forwarded-For": "203.0.113.9"}

    direct = Api(outsider, api.token).post(
        ACCOUNTS, account_body(contractor_id, name="direct"), headers=spoofed
    )
    proxied = api.post(ACCOUNTS, account_body(contractor_id, name="proxied"), headers=spoofed)

    assert direct.status_code == proxied.status_code == 201
    assert audit_ips(db) == [OUTSIDER, "203.0.113.9"]


def test_a_configured_proxys_x_real_ip_is_audited(
    api: Api, db: Db, behind_balancer: TestClient, contractor_id: int
) -> None:
    response = Api(behind_balancer, api.token).post(
        ACCOUNTS, account_body(contractor_id), headers={"X-Real-IP": "198.51.100.4"}
    )

    assert response.status_code == 201, response.text
    assert audit_ips(db) == ["198.51.100.4"]


# -- the IP allow-list ------------------------------------------------------------------------


def test_an_untrusted_peers_x_forwarded_for_does_not_pass_an_allow_list(
    api: Api, outsider: TestClient, restricted_admin: int
) -> None:
    token = restricted_login(api.client, "10.1.2.3").json()["jwt"]
    inside = {"Authorization": token, "X-Forwarded-For": "10.1.2.3"}

    assert Api(outsider, token).get(ACCOUNTS, headers=inside).status_code == 401
    assert api.get(ACCOUNTS, headers=inside).status_code == 200
    refused = restricted_login(outsider, "10.1.2.3")
    assert refused.status_code == 401
    assert refused.json()["errors"][0]["detail"] == "Your IP address is not allowed."


def test_x_forwarded_for_walks_the_configured_proxies(
    api: Api,
    behind_balancer: TestClient,
    loopback_of_balanced_app: TestClient,
    restricted_admin: int,
) -> None:
    token = restricted_login(api.client, "10.1.2.3").json()["jwt"]
    through_balancers = {"Authorization": token, "X-Forwarded-For": "10.1.2.3, 172.16.0.9"}

    # 172.16.0.9 is one of the configured proxies, so the client is 10.1.2.3
    assert Api(behind_balancer, token).get(ACCOUNTS, headers=through_balancers).status_code == 200
    assert restricted_login(behind_balancer, "10.1.2.3").status_code == 201
    # from loopback, untrusted there, the client is 127.0.0.1
    local = Api(loopback_of_balanced_app, token).get(ACCOUNTS, headers=through_balancers)
    assert local.status_code == 401
