"""Password hashing: argon2id, verified in constant work whether or not the user exists, and
at most a few checks at once (issue 6)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from accounts_api.auth import passwords
from accounts_api.auth.errors import Overloaded
from accounts_api.auth.passwords import PasswordChecks, hash_password, verify_password

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def password_hash() -> str:
    # argon2 is slow on purpose: hash once for the module
    return hash_password(PASSWORD)


def test_hash_is_argon2id(password_hash: str) -> None:
    assert password_hash.startswith("$argon2id$v=19$")
    assert PASSWORD not in password_hash


def test_verify(password_hash: str) -> None:
    assert verify_password(password_hash, PASSWORD) is True


@pytest.mark.parametrize("attempt", ["wrong", PASSWORD.upper()])
def test_wrong_password(password_hash: str, attempt: str) -> None:
    assert verify_password(password_hash, attempt) is False


@pytest.mark.parametrize(
    "stored",
    ["garbage", "", "$argon2id$v=19$m=65536,t=3,p=4$broken", "$2b$12$abcdefghijklmnopqrstuv"],
)
def test_garbage_hash_never_verifies(stored: str) -> None:
    assert verify_password(stored, PASSWORD) is False


def test_missing_user_never_verifies() -> None:
    # the dummy hash's own password must not log anyone in
    assert verify_password(None, "not a password of anyone") is False


# -- issue 6: at most `concurrency` checks at once, at most `queue` waiting ------------------


class HeldChecks:
    """verify_password that counts the checks running at once and holds them until released."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.release = threading.Event()

    def __call__(self, password_hash: str | None, password: str) -> bool:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.release.wait(timeout=60), "never released"
            return False
        finally:
            with self.lock:
                self.running -= 1


def test_checks_beyond_the_cap_wait_and_beyond_the_queue_are_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    held = HeldChecks()
    monkeypatch.setattr(passwords, "verify_password", held)

    async def scenario() -> list[bool]:
        checks = PasswordChecks(concurrency=2, queue=1)

        async def login() -> bool:
            with checks.place():
                return await checks.verify(None, "guess")

        logins = [asyncio.create_task(login()) for _ in range(3)]
        await asyncio.sleep(0)  # each took its place
        with pytest.raises(Overloaded), checks.place():
            pass
        deadline = time.monotonic() + 60
        while held.running < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        # a chance for a third check to start, were the cap not kept
        await asyncio.sleep(0.2)
        assert held.running == 2
        held.release.set()
        results = await asyncio.gather(*logins)
        # every place was given back
        for _ in range(3):
            with checks.place():
                pass
        return results

    assert asyncio.run(scenario()) == [False, False, False]
    assert held.most == 2


def test_a_refused_login_takes_no_place() -> None:
    checks = PasswordChecks(concurrency=1, queue=0)

    with checks.place():
        for _ in range(3):
            with pytest.raises(Overloaded), checks.place():
                pass
    with checks.place():
        pass


def test_overloaded_is_a_503_with_retry_after() -> None:
    refused = Overloaded()

    assert (refused.status, refused.retry_after) == (503, 1)
    assert refused.document()["errors"][0]["code"] == "503"
