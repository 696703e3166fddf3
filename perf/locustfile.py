"""Locust scenario: a user-management front end's traffic mix.

    pip install locust
    locust -f perf/locustfile.py --headless -u 50 -r 10 -t 30s --host http://127.0.0.1:8000 \
        --csv perf/results/locust --html perf/results/locust.html

Against a server whose users are 1..N (``python -m perf.bench`` seeds them
that way; set ``USERMGMT_PERF_USERS=N``, default 100000). Each simulated
user, with no think time, does:

* 80% ``GET /api/users/{id}``, ids Zipf-skewed (s = ``USERMGMT_PERF_ZIPF_S``,
  default 1.1) so that a few users are hot, as real traffic is;
* 8% a list page after a random cursor;
* 5% create with a unique email;
* 5% update: GET for the ETag, then PATCH with ``If-Match``; a 412 (someone
  changed it in between) is a correct answer, counted as success and also
  reported as its own "412 conflict" row;
* 2% delete of a user it created (or a random one when it has none).

404 is a correct answer for reads and writes of users deleted earlier in
the run and is counted as success; everything else not 2xx fails.

A service that requires bearer tokens needs an admin's:
``USERMGMT_PERF_TOKEN=<token>`` is sent as ``Authorization: Bearer`` with
every request (perf/README.md shows how to get one).

Locust is a tool here, not a dependency of the project: install it in the
virtualenv yourself (see perf/README.md).
"""

from __future__ import annotations

import base64
import bisect
import itertools
import os
import random
import time
import uuid
from typing import Any

from locust import FastHttpUser, task
from locust.contrib.fasthttp import ResponseContextManager

USERS = int(os.environ.get("USERMGMT_PERF_USERS", "100000"))
ZIPF_S = float(os.environ.get("USERMGMT_PERF_ZIPF_S", "1.1"))
PAGE_SIZE = 50
RUN_ID = uuid.uuid4().hex[:8]
TOKEN = os.environ.get("USERMGMT_PERF_TOKEN")
# A permutation of ranks to ids, so that the hottest users are not simply
# ids 1, 2, 3... (same mapping as perf/wrk/common.lua).
_PERMUTE = 1_000_003 if USERS % 1_000_003 else 999_983
# Cumulative Zipf weights of ranks 1..USERS, computed once per process.
_ZIPF_CDF = list(itertools.accumulate(rank ** -ZIPF_S for rank in range(1, USERS + 1)))


def zipf_user_id() -> int:
    """A seeded id, Zipf-distributed over ranks."""
    rank = bisect.bisect_left(_ZIPF_CDF, random.random() * _ZIPF_CDF[-1]) + 1
    return ((rank - 1) * _PERMUTE) % USERS + 1


def cursor_after(user_id: int) -> str:
    """The API's opaque cursor: base64url of b"u1:<id>" without padding."""
    return base64.urlsafe_b64encode(f"u1:{user_id}".encode()).rstrip(b"=").decode()


def _accept(response: ResponseContextManager, *statuses: int) -> None:
    if response.status_code in statuses:
        response.success()
    else:
        response.failure(f"unexpected status {response.status_code}")


class ApiUser(FastHttpUser):
    """One client of the API; no wait between requests (maximum pressure)."""

    host = "http://127.0.0.1:8000"

    def on_start(self) -> None:
        self.created: list[int] = []
        self.auth = {"Authorization": f"Bearer {TOKEN}"} if TOKEN else {}

    @task(80)
    def get_user(self) -> None:
        with self.client.get(f"/api/users/{zipf_user_id()}", name="GET /api/users/[id]",
                             headers=self.auth, catch_response=True) as response:
            _accept(response, 200, 404)

    @task(8)
    def list_page(self) -> None:
        after = random.randint(0, max(USERS - PAGE_SIZE, 0))
        with self.client.get(f"/api/users?limit={PAGE_SIZE}&after={cursor_after(after)}",
                             name="GET /api/users?after=[cursor]", headers=self.auth,
                             catch_response=True) as response:
            _accept(response, 200)

    @task(5)
    def create_user(self) -> None:
        email = f"locust-{RUN_ID}-{uuid.uuid4().hex[:12]}@bench.example.com"
        with self.client.post("/api/users", json={"name": "Locust User", "email": email},
                              name="POST /api/users", headers=self.auth,
                              catch_response=True) as response:
            _accept(response, 201)
            if response.status_code == 201:
                self.created.append(int(response.json()["id"]))

    @task(5)
    def update_user(self) -> None:
        user_id = zipf_user_id()
        with self.client.get(f"/api/users/{user_id}", name="GET /api/users/[id] (for ETag)",
                             headers=self.auth, catch_response=True) as response:
            _accept(response, 200, 404)
            etag = response.headers.get("ETag") if response.status_code == 200 else None
        if etag is None:
            return
        started = time.perf_counter()
        with self.client.patch(
            f"/api/users/{user_id}", name="PATCH /api/users/[id] If-Match",
            data=f'{{"name": "Locust Patch {uuid.uuid4().hex[:8]}"}}',
            headers={**self.auth, "Content-Type": "application/merge-patch+json",
                     "If-Match": etag},
            catch_response=True,
        ) as response:
            _accept(response, 200, 404, 412)
            if response.status_code == 412:
                self._record_conflict(time.perf_counter() - started)

    @task(2)
    def delete_user(self) -> None:
        user_id = self.created.pop() if self.created else random.randint(1, USERS)
        with self.client.delete(f"/api/users/{user_id}", name="DELETE /api/users/[id]",
                                headers=self.auth, catch_response=True) as response:
            _accept(response, 204, 404)

    def _record_conflict(self, seconds: float) -> None:
        """A 412 is a success (If-Match did its job); show how often it happens."""
        context: dict[str, Any] = {}
        self.environment.events.request.fire(
            request_type="PATCH", name="412 conflict (success)", response_time=seconds * 1000,
            response_length=0, exception=None, context=context)
