"""Event subscriptions (issue 7; Yeti's notifications.event_subscriptions, contract §7): CRUD,
the webhook secret shown only in the create's answer, validations, filters and sorting."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime
from typing import Any

import pytest
from standardwebhooks import Webhook

from accounts_api.jsonapi.document import format_timestamp
from tests.api.contract import PREFIX, ResourceContract, ids
from tests.conftest import BASE_URL, Api, Db

SUBSCRIPTIONS = f"{PREFIX}/event-subscriptions"
LOW_REACHED = "AccountLowThesholdReached"
HIGH_REACHED = "AccountHighThesholdReached"
LOW_CLEARED = "AccountLowThesholdCleared"
HIGH_CLEARED = "AccountHighThesholdCleared"
# 16 bytes, the least a given secret may carry
GIVEN_SECRET = "whsec_" + base64.b64encode(bytes(range(16))).decode()
ATTRIBUTES = ["event", "send-to", "url", "secret", "created-at", "updated-at"]


def subscription_body(event: str | None = LOW_REACHED, **attributes: Any) -> dict[str, Any]:
    return {
        "data": {
            "type": "event-subscriptions",
            "attributes": {"event": event, **attributes},
        }
    }


def update_body(key: object, **attributes: Any) -> dict[str, Any]:
    return {"data": {"type": "event-subscriptions", "id": str(key), "attributes": attributes}}


def error(attribute: str, message: str) -> dict[str, Any]:
    return {
        "title": message,
        "detail": f"{attribute} - {message}",
        "code": "100",
        "source": {"pointer": f"/data/attributes/{attribute}"},
        "status": "422",
    }


def created(api: Api, event: str = LOW_REACHED, **attributes: Any) -> dict[str, Any]:
    response = api.post(SUBSCRIPTIONS, subscription_body(event, **attributes))
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def contact(db: Db, contractor: int | None, email: str = "ops@example.com") -> int:
    return int(
        db.fetchval(
            "INSERT INTO contacts (contractor_id, email) VALUES ($1, $2) RETURNING id",
            contractor,
            email,
        )
    )


class TestEventSubscriptions(ResourceContract):
    path = "event-subscriptions"
    type = "event-subscriptions"

    def create_body(self) -> dict[str, Any]:
        return subscription_body(HIGH_CLEARED, url="https://hooks.example.com/yeti")

    def make(self, api: Api) -> str:
        key: str = created(api, LOW_CLEARED)["id"]
        return key


# -- create, and the secret shown once ---------------------------------------------------------


def test_create_answers_with_every_attribute_and_a_generated_secret(
    api: Api, db: Db, contractor_id: int
) -> None:
    recipient = contact(db, contractor_id)

    response = api.post(
        SUBSCRIPTIONS,
        subscription_body(url="https://hooks.example.com/yeti", **{"send-to": [recipient]}),
    )

    assert response.status_code == 201, response.text
    data = response.json()["data"]
    own = f"{BASE_URL}{SUBSCRIPTIONS}/{data['id']}"
    assert response.headers["location"] == own
    assert response.headers["cache-control"] == "no-store"
    attributes = data["attributes"]
    assert list(attributes) == ATTRIBUTES
    secret = attributes.pop("secret")
    created_at = attributes.pop("created-at")
    assert attributes.pop("updated-at") == created_at
    assert attributes == {
        "event": LOW_REACHED,
        "send-to": [recipient],
        "url": "https://hooks.example.com/yeti",
    }
    assert data["links"] == {"self": own}
    assert "relationships" not in data
    row = db.fetchrow("SELECT * FROM event_subscriptions")
    assert row is not None
    assert (row["event"], row["send_to"], row["secret"]) == (LOW_REACHED, [recipient], secret)
    assert created_at == format_timestamp(row["created_at"])


def test_a_generated_secret_is_a_standard_webhooks_secret(api: Api) -> None:
    secret = created(api)["attributes"]["secret"]

    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", secret), secret
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 24
    webhook = Webhook(secret)
    moment = datetime.now(UTC)
    signature = webhook.sign("msg_1", moment, '{"event_type":"x"}')
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
    assert webhook.verify('{"event_type":"x"}', headers) == {"event_type": "x"}


def test_every_subscription_gets_its_own_secret(api: Api) -> None:
    secrets = {created(api, event)["attributes"]["secret"] for event in (LOW_REACHED, HIGH_REACHED)}

    assert len(secrets) == 2


def test_a_given_secret_is_kept_and_shown_once(api: Api, db: Db) -> None:
    data = created(api, secret=GIVEN_SECRET)

    assert data["attributes"]["secret"] == GIVEN_SECRET
    assert db.fetchval("SELECT secret FROM event_subscriptions") == GIVEN_SECRET


def test_the_secret_is_in_no_other_answer(api: Api) -> None:
    data = created(api, url="https://hooks.example.com/a")
    key, secret = data["id"], data["attributes"]["secret"]
    new_secret = "whsec_" + base64.b64encode(b"another key of 24 bytes!").decode()

    answers = {
        "show": api.get(f"{SUBSCRIPTIONS}/{key}"),
        "index": api.get(SUBSCRIPTIONS),
        "sparse show": api.get(
            f"{SUBSCRIPTIONS}/{key}", params={"fields[event-subscriptions]": "event,secret"}
        ),
        "update": api.patch(f"{SUBSCRIPTIONS}/{key}", update_body(key, url=None)),
        "secret update": api.put(f"{SUBSCRIPTIONS}/{key}", update_body(key, secret=new_secret)),
    }

    for name, response in answers.items():
        assert response.status_code == 200, (name, response.text)
        assert secret not in response.text, name
        assert new_secret not in response.text, name
        assert '"secret"' not in response.text, name
        assert response.headers["cache-control"] != "no-store", name
    show = answers["show"].json()["data"]["attributes"]
    assert list(show) == [a for a in ATTRIBUTES if a != "secret"]
    assert answers["sparse show"].json()["data"]["attributes"] == {"event": LOW_REACHED}


def test_an_idempotent_replay_of_the_create_shows_the_same_secret(api: Api, db: Db) -> None:
    headers = {"Idempotency-Key": "subscribe-once"}

    first = api.post(SUBSCRIPTIONS, subscription_body(), headers=headers)
    replay = api.post(SUBSCRIPTIONS, subscription_body(), headers=headers)

    assert first.status_code == replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content
    assert replay.headers["cache-control"] == "no-store"
    assert db.fetchval("SELECT count(*) FROM event_subscriptions") == 1


# -- update and delete ---------------------------------------------------------------------------


def test_update_changes_what_is_given_and_the_update_time(
    api: Api, db: Db, contractor_id: int
) -> None:
    recipient = contact(db, contractor_id)
    data = created(api, url="https://hooks.example.com/a", **{"send-to": [recipient]})
    key = data["id"]
    db.execute("UPDATE event_subscriptions SET updated_at = now() - interval '1 day'")
    before = db.fetchval("SELECT updated_at FROM event_subscriptions")

    response = api.patch(f"{SUBSCRIPTIONS}/{key}", update_body(key, event=HIGH_REACHED))

    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    assert (attributes["event"], attributes["send-to"], attributes["url"]) == (
        HIGH_REACHED,
        [recipient],
        "https://hooks.example.com/a",
    )
    assert db.fetchval("SELECT updated_at FROM event_subscriptions") > before
    assert db.fetchval("SELECT secret FROM event_subscriptions") == data["attributes"]["secret"]


def test_update_replaces_the_secret(api: Api, db: Db) -> None:
    key = created(api)["id"]

    response = api.patch(f"{SUBSCRIPTIONS}/{key}", update_body(key, secret=GIVEN_SECRET))

    assert response.status_code == 200, response.text
    assert db.fetchval("SELECT secret FROM event_subscriptions") == GIVEN_SECRET


def test_an_update_changing_nothing_keeps_the_update_time(api: Api, db: Db) -> None:
    key = created(api)["id"]
    before = db.fetchval("SELECT updated_at FROM event_subscriptions")

    response = api.patch(f"{SUBSCRIPTIONS}/{key}", update_body(key, event=LOW_REACHED))

    assert response.status_code == 200, response.text
    assert db.fetchval("SELECT updated_at FROM event_subscriptions") == before


@pytest.mark.parametrize("key", ["created-at", "updated-at"])
def test_timestamps_are_read_only(api: Api, key: str) -> None:
    response = api.post(SUBSCRIPTIONS, subscription_body(**{key: "2024-01-01T00:00:00Z"}))

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "105"


@pytest.mark.parametrize("key", ["created-at", "updated-at"])
def test_timestamps_sent_back_as_read_are_ignored_on_update(api: Api, key: str) -> None:
    # issue 8: compared as rendered (milliseconds, `Z`); another value is still 105
    fetched = created(api)
    stamp = fetched["attributes"][key]
    member = f"{SUBSCRIPTIONS}/{fetched['id']}"

    same = api.patch(member, update_body(fetched["id"], url="https://x.example/", **{key: stamp}))
    other = api.patch(member, update_body(fetched["id"], **{key: "2024-01-01T00:00:00.000Z"}))

    assert same.status_code == 200, same.text
    assert same.json()["data"]["attributes"]["url"] == "https://x.example/"
    assert other.status_code == 400
    assert other.json()["errors"] == [
        {
            "title": "Param not allowed",
            "detail": f"{key} is not allowed.",
            "code": "105",
            "status": "400",
        }
    ]


def test_delete_answers_204_and_removes_the_subscription(api: Api, db: Db) -> None:
    key = created(api)["id"]

    response = api.delete(f"{SUBSCRIPTIONS}/{key}")

    assert response.status_code == 204
    assert response.content == b""
    assert db.fetchval("SELECT count(*) FROM event_subscriptions") == 0
    assert api.get(f"{SUBSCRIPTIONS}/{key}").status_code == 404
    assert api.delete(f"{SUBSCRIPTIONS}/{key}").status_code == 404


# -- validations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (None, "can't be blank"),
        ("", "is not included in the list"),
        ("AccountLowThresholdReached", "is not included in the list"),
        ("DialpeerLocked", "is not included in the list"),
        (3, "is not included in the list"),
        ([LOW_REACHED], "is not included in the list"),
    ],
)
def test_event_must_be_a_threshold_event(api: Api, db: Db, event: Any, message: str) -> None:
    response = api.post(SUBSCRIPTIONS, subscription_body(event))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("event", message)]}
    assert db.fetchval("SELECT count(*) FROM event_subscriptions") == 0


def test_one_subscription_per_event(api: Api, db: Db) -> None:
    created(api, LOW_REACHED)
    other = created(api, HIGH_REACHED)["id"]

    on_create = api.post(SUBSCRIPTIONS, subscription_body(LOW_REACHED))
    on_update = api.patch(f"{SUBSCRIPTIONS}/{other}", update_body(other, event=LOW_REACHED))

    for response in (on_create, on_update):
        assert response.status_code == 422
        assert response.json() == {"errors": [error("event", "has already been taken")]}
    assert db.fetchval("SELECT count(*) FROM event_subscriptions") == 2


def test_send_to_takes_existing_contacts_and_stores_empty_as_null(
    api: Api, db: Db, admin_id: int, contractor_id: int
) -> None:
    first, second = contact(db, contractor_id), contact(db, contractor_id)
    # Yeti counts every contact, an admin user's too (they are invisible in /contacts)
    admins = int(
        db.fetchval(
            "INSERT INTO contacts (admin_user_id, email) VALUES ($1, 'a@x.io') RETURNING id",
            admin_id,
        )
    )

    listed = created(api, LOW_REACHED, **{"send-to": [second, first, admins]})
    empty = created(api, HIGH_REACHED, **{"send-to": []})
    blank_entries = created(api, LOW_CLEARED, **{"send-to": ["", None]})

    assert listed["attributes"]["send-to"] == [second, first, admins]
    assert empty["attributes"]["send-to"] is None
    assert blank_entries["attributes"]["send-to"] is None
    assert db.fetchval("SELECT count(*) FROM event_subscriptions WHERE send_to IS NULL") == 2


@pytest.mark.parametrize(
    ("send_to", "message"),
    [
        ("missing", "is invalid"),
        ("repeated", "is invalid"),
        (["abc"], "must be a list of contact ids"),
        ([0], "must be a list of contact ids"),
        ([2**40], "must be a list of contact ids"),
        ([{"id": 1}], "must be a list of contact ids"),
    ],
)
def test_send_to_entries_must_be_contacts(
    api: Api, db: Db, contractor_id: int, send_to: Any, message: str
) -> None:
    known = contact(db, contractor_id)
    if send_to == "missing":
        send_to = [known, known + 1000]
    elif send_to == "repeated":
        # Yeti: `contacts.count != send_to.count`
        send_to = [known, known]

    response = api.post(SUBSCRIPTIONS, subscription_body(**{"send-to": send_to}))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("send-to", message)]}


@pytest.mark.parametrize(
    "url",
    ["http://hooks.example.com", "https://hooks.example.com:8443/yeti?token=abc", None],
)
def test_url_may_be_http_https_or_null(api: Api, url: str | None) -> None:
    assert created(api, url=url)["attributes"]["url"] == url


@pytest.mark.parametrize(
    "url",
    [
        "",
        "hooks.example.com",
        "/relative",
        "ftp://hooks.example.com",
        "HTTPS://hooks.example.com",
        "https://",
        "https:///path",
        "https://hooks.example.com:99999/",
        "https://hooks example.com/",
        "https://hooks.example.com/\n",
        "javascript:alert(1)",
        5,
    ],
)
def test_url_must_be_an_absolute_http_url(api: Api, db: Db, url: Any) -> None:
    response = api.post(SUBSCRIPTIONS, subscription_body(url=url))

    assert response.status_code == 422, response.text
    assert response.json() == {"errors": [error("url", "is invalid")]}
    assert db.fetchval("SELECT count(*) FROM event_subscriptions") == 0


def test_url_is_bounded(api: Api) -> None:
    response = api.post(SUBSCRIPTIONS, subscription_body(url="https://a.io/" + "x" * 2048))

    assert response.json()["errors"] == [error("url", "is too long (maximum is 2048 characters)")]


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("whsec_", "is invalid"),
        ("whsec_" + base64.b64encode(bytes(15)).decode(), "is invalid"),
        (GIVEN_SECRET.removeprefix("whsec_"), "is invalid"),
        ("WHSEC_" + GIVEN_SECRET.removeprefix("whsec_"), "is invalid"),
        # url-safe base64: the standardwebhooks decoder would drop `-` and `_` silently
        ("whsec_" + base64.urlsafe_b64encode(b"\xfb\xff" * 12).decode(), "is invalid"),
        ("whsec_" + "A" * 21, "is invalid"),
        (GIVEN_SECRET + " ", "is invalid"),
        (12345678901234567890, "is invalid"),
        ({"key": "x"}, "must be a string"),
    ],
)
def test_a_given_secret_must_be_a_standard_webhooks_secret(
    api: Api, db: Db, secret: Any, message: str
) -> None:
    response = api.post(SUBSCRIPTIONS, subscription_body(secret=secret))

    assert response.status_code == 422
    assert response.json() == {"errors": [error("secret", message)]}
    assert db.fetchval("SELECT count(*) FROM event_subscriptions") == 0


def test_a_null_secret_on_create_is_generated_and_on_update_blank(api: Api, db: Db) -> None:
    data = created(api, secret=None)
    key = data["id"]

    response = api.patch(f"{SUBSCRIPTIONS}/{key}", update_body(key, secret=None))

    assert data["attributes"]["secret"].startswith("whsec_")
    assert response.status_code == 422
    assert response.json() == {"errors": [error("secret", "can't be blank")]}
    assert db.fetchval("SELECT secret FROM event_subscriptions") == data["attributes"]["secret"]


def test_every_error_at_once_in_order(api: Api) -> None:
    response = api.post(
        SUBSCRIPTIONS,
        {
            "data": {
                "type": "event-subscriptions",
                "attributes": {"secret": "x", "url": "x", "send-to": ["x"], "event": "x"},
            }
        },
    )

    assert response.status_code == 422
    assert response.json()["errors"] == [
        error("event", "is not included in the list"),
        error("send-to", "must be a list of contact ids"),
        error("url", "is invalid"),
        error("secret", "is invalid"),
    ]


# -- filters and sorting ---------------------------------------------------------------------------


@pytest.fixture
def three(api: Api) -> list[int]:
    return [
        int(created(api, LOW_REACHED, url="https://a.example.com/hook")["id"]),
        int(created(api, HIGH_REACHED, url="http://b.example.org/hook")["id"]),
        int(created(api, LOW_CLEARED)["id"]),
    ]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"filter[event_eq]": HIGH_REACHED}, [1]),
        ({"filter[event_in]": f"{LOW_CLEARED},{LOW_REACHED}"}, [0, 2]),
        ({"filter[event_not_eq]": LOW_REACHED}, [1, 2]),
        ({"filter[url_start]": "https://"}, [0]),
        ({"filter[url_cont]": "EXAMPLE"}, [0, 1]),
        ({"sort": "event"}, [1, 2, 0]),
        ({"sort": "-event"}, [0, 2, 1]),
        ({"sort": "-id"}, [2, 1, 0]),
    ],
)
def test_filters_and_sorting(
    api: Api, three: list[int], params: dict[str, str], expected: list[int]
) -> None:
    assert ids(api.get(SUBSCRIPTIONS, params=params)) == [three[i] for i in expected]


def test_an_unknown_event_in_a_filter_is_107(api: Api) -> None:
    response = api.get(SUBSCRIPTIONS, params={"filter[event_eq]": "DialpeerLocked"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "107"


@pytest.mark.parametrize("name", ["secret_eq", "secret_start", "send_to_eq", "created_at_gt"])
def test_other_filters_are_102(api: Api, name: str) -> None:
    response = api.get(SUBSCRIPTIONS, params={f"filter[{name}]": "x"})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "102"


@pytest.mark.parametrize("field", ["secret", "url", "send-to", "created-at"])
def test_only_id_and_event_sort(api: Api, field: str) -> None:
    response = api.get(SUBSCRIPTIONS, params={"sort": field})

    assert response.status_code == 400
    assert response.json()["errors"][0]["code"] == "114"
