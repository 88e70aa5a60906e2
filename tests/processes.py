"""What a child process of a test or a benchmark (server, worker, CLI) starts with.

One place builds its environment, so that none of the copies forgets to drop the
developer's own TRACEWIRE_* variables or names a setting differently.
"""

from __future__ import annotations

import os
import socket

from tests.conftest import TEST_JWT_SECRET

PREFIX = "TRACEWIRE_"
# The in-process suite's cheap password hashing (see settings_for), for children that log
# users in many times; benchmarks leave the production parameters.
CHEAP_HASHING = {"PASSWORD_HASH_MEMORY_KIB": "1024", "PASSWORD_HASH_TIME_COST": "1"}


def free_port() -> int:
    """A port nobody listens on right now (on 127.0.0.1)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inherited_env() -> dict[str, str]:
    """This process's environment without any TRACEWIRE_* variable.

    The developer's shell (or the suite's own settings, e.g. its data directory) must not
    leak into a child: it gets exactly the settings its caller names.
    """
    return {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}


def child_env(database_url: str, /, **settings: str) -> dict[str, str]:
    """The environment of a `tracewire` child process on the test database `database_url`.

    The test environment and JWT secret are set; `settings` are further TRACEWIRE_*
    variables without the prefix (e.g. LOG_LEVEL="WARNING") and win over those.
    Variables of other names (COLUMNS, PYTHONPATH) the caller adds to the result.
    """
    values = {"DATABASE_URL": database_url, "ENVIRONMENT": "test", "JWT_SECRET": TEST_JWT_SECRET}
    values.update(settings)
    return inherited_env() | {f"{PREFIX}{name}": value for name, value in values.items()}
