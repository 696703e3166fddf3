"""Seed a database with users 1..N for load tests (Locust, wrk by hand).

    python -m perf.seed --database-url URL [--users 100000]

EMPTIES the users table (and what references it) first, so that the ids
are exactly 1..N, which perf/locustfile.py and the wrk scripts assume.
For the embedded database of a running ``usermgmt serve`` the URL is
``postgresql://postgres@/postgres?host=<absolute USERMGMT_DATA_DIR>/pgdata``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from perf.servers import seed_users


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.seed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True, help="the database to EMPTY and seed")
    parser.add_argument("--users", type=int, default=100_000, help="users to insert")
    args = parser.parse_args(argv)
    seed_users(args.database_url, args.users)
    print(f"seeded users 1..{args.users}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
