"""The integration and chaos tests' servers: :mod:`perf.harness`, the one harness.

Every server binds a free loopback port, is waited for with a deadline,
and is stopped (SIGTERM, then SIGKILL of its whole process group) when
the test ends. Each gets an admin of its own before it starts and, once
ready, :attr:`Server.http` carries that admin's token.
"""

from __future__ import annotations

from perf.harness import Admin, Server, create_admin, free_port, login, usermgmt_command

__all__ = ["Admin", "Server", "create_admin", "free_port", "login", "usermgmt_command"]
