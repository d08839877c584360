"""README's "Trying it by hand" and "Moving money" (issue 9), run as a newcomer runs them: the
shell blocks as written, in a directory with `var/admin_password` and `.venv`, against a fresh
`accounts-api serve` on a fresh database; each `# →` line is checked against the answer
printed above it, so the README cannot drift from what the service answers."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from accounts_api.auth import admins
from accounts_api.db import migrate
from tests.conftest import ROOT, SECRET, run, scratch_database
from tests.test_cli import TIMEOUT, Service, serving

README = ROOT / "README.md"
SECTIONS = ("## Trying it by hand", "## Moving money")
EXPECTED = "# → "
ELLIPSIS = "..."
PASSWORD = "readme-admin-password"
README_BASE = "BASE=http://127.0.0.1:8000/api/rest/admin"


def shell_blocks(text: str, heading: str) -> list[str]:
    section = text[text.index(f"\n{heading}\n") :]
    section = section[: section.index("\n## ", 1)]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)


def script() -> str:
    text = README.read_text()
    return "\n".join(block for heading in SECTIONS for block in shell_blocks(text, heading))


def expectations(script_text: str) -> list[str]:
    return [
        line.strip()[len(EXPECTED) :]
        for line in script_text.splitlines()
        if line.strip().startswith(EXPECTED)
    ]


def matches(expected: str, line: str) -> bool:
    """`expected` with `...` standing for any text: its pieces appear in `line` in order, the
    first at its start unless it begins with `...`, the last at its end unless it ends so."""
    pieces = expected.split(ELLIPSIS)
    if len(pieces) == 1:
        return line == expected
    if not line.startswith(pieces[0]) or not line.endswith(pieces[-1]):
        return False
    position = len(pieces[0])
    for piece in pieces[1:-1]:
        found = line.find(piece, position)
        if found < 0:
            return False
        position = found + len(piece)
    return len(line) - len(pieces[-1]) >= position


@pytest.mark.parametrize(
    ("expected", "line", "matched"),
    [
        (
            '{"data":{"id":"1",...,"balance":"75.0"}}}',
            '{"data":{"id":"1","x":1,"balance":"75.0"}}}',
            True,
        ),
        ('{"data":{"id":"1",...', '{"data":{"id":"2","x":1}', False),
        ('...,"status":"412"}]}', '{"errors":[{"status":"409"}]}', False),
        ("201 replayed: true", "201 replayed: ", False),
        ("201 replayed: true", "201 replayed: true", True),
        ("a...b...c", "acb", False),
    ],
)
def test_the_expectation_pattern(expected: str, line: str, matched: bool) -> None:
    assert matches(expected, line) is matched


@pytest.fixture
def fresh_service(database_url: str, tmp_path: Path) -> Iterator[tuple[Service, str]]:
    """`accounts-api serve` on a database of its own, as after a first `make run`: an `admin`
    whose password is in `var/admin_password` of the directory the blocks run in."""
    with scratch_database(database_url, "accounts_api_scratch_readme") as url:
        migrate.upgrade(url)

        async def create_admin() -> None:
            import asyncpg

            connection = await asyncpg.connect(url)
            try:
                await admins.create(connection, "admin", PASSWORD)
            finally:
                await connection.close()

        run(create_admin())
        (tmp_path / "var").mkdir()
        (tmp_path / "var" / "admin_password").write_text(PASSWORD + "\n")
        (tmp_path / ".venv").symlink_to(ROOT / ".venv")
        service = serving(
            tmp_path / "var",
            DATABASE_URL=url,
            ACCOUNTS_API_SECRET_KEY=SECRET,
            ACCOUNTS_API_DELIVERY="off",
        )
        try:
            yield service, url
        finally:
            service.kill()


def test_the_readme_blocks_answer_what_the_readme_shows(
    fresh_service: tuple[Service, str], tmp_path: Path
) -> None:
    service, url = fresh_service
    text = script()
    assert README_BASE in text
    expected = expectations(text)
    assert len(expected) >= 10
    done = subprocess.run(
        [
            "bash",
            "-euo",
            "pipefail",
            "-c",
            text.replace(README_BASE, f"BASE={service.url}/api/rest/admin"),
        ],
        cwd=tmp_path,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = (done.stdout + done.stderr).splitlines()
    # one line per answer: the blocks print each on a line of its own
    assert len(printed) == len(expected), "\n".join(printed)
    for shown, answer in zip(expected, printed, strict=True):
        assert matches(shown, answer), f"README shows\n  {shown}\nthe service answered\n  {answer}"


def test_the_first_run_shown_applies_every_migration() -> None:
    every = migrate.revisions()
    shown = f"Applied {len(every)} migrations ({', '.join(every)}): the database is at {every[-1]}."
    assert shown in README.read_text()
