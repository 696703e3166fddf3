"""A plain Falcon + psycopg-pool implementation of the users API.

The baseline the benchmark compares the actor design against: what one
would write without actors, supervisors or a cache. See ``app.py``.
"""
