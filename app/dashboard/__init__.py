"""The service's Observer: a live view of every worker's supervision tree.

* :mod:`app.dashboard.journal`: recent supervisor events, per-child records;
* :mod:`app.dashboard.traffic`: request rates and latencies from the metrics;
* :mod:`app.dashboard.snapshot`: one worker as the dashboard shows it;
* :mod:`app.dashboard.board`: the directory where workers publish snapshots
  and leave each other kill commands;
* :mod:`app.dashboard.publisher`: the thread that keeps a worker's snapshot fresh;
* :mod:`app.dashboard.aggregate`: every worker folded into one document;
* :mod:`app.dashboard.service`: :class:`~app.dashboard.service.Dashboard`,
  what a worker's runtime and HTTP resources hold;
* ``static/``: the page, its script and its style sheet.

Nothing is re-exported here: gunicorn's master imports
:mod:`app.dashboard.board` to clean up after a dead worker and must not
import the metrics on the way.
"""
