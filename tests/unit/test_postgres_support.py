"""tests/support/postgres.py: without PostgreSQL installed the database tests fail, not skip."""

from __future__ import annotations

import pytest

from tests.support import postgres


def test_a_missing_initdb_fails_with_the_package_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda _name: None)
    monkeypatch.setattr(postgres.glob, "glob", lambda _pattern: [])
    with pytest.raises(pytest.fail.Exception, match="apt-get install postgresql"):
        postgres.bin_dir()


def test_the_newest_installed_version_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres.shutil, "which", lambda _name: None)
    found = ["/usr/lib/postgresql/9/bin/initdb", "/usr/lib/postgresql/15/bin/initdb"]
    monkeypatch.setattr(postgres.glob, "glob", lambda _pattern: found)
    assert str(postgres.bin_dir()) == "/usr/lib/postgresql/15/bin"
