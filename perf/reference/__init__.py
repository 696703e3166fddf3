"""The references: the users API written without the actor design.

What the benchmark compares the service against: the same stack the plain
way (``app.py``: Falcon + psycopg-pool, no actors, supervisors or cache)
and what a Python team would pick instead (``fastapi_app.py``: FastAPI +
uvicorn + asyncpg). Both share the API's rules (``users_api.py``).
``floor.py`` is the ceiling: Falcon answering constant bytes.
"""
