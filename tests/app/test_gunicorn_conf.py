"""app.gunicorn_conf is a gunicorn configuration file as the README uses it."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import Application
from gunicorn.config import Config


class _Loader(Application):  # type: ignore[misc]
    def __init__(self) -> None:  # no command line to parse
        self.cfg = Config()

    def load(self) -> Any:  # pragma: no cover - never served
        raise AssertionError("not served")


def test_every_setting_of_the_module_is_a_valid_gunicorn_setting() -> None:
    loader = _Loader()
    loader.load_config_from_module_name_or_filename("python:app.gunicorn_conf")
    cfg = loader.cfg
    assert cfg.worker_class_str == "app.edge.Worker"
    assert cfg.keepalive == 5 and cfg.graceful_timeout == 30
    assert (cfg.limit_request_line, cfg.limit_request_fields) == (4094, 50)
    # The hooks are gunicorn's own settings, read from the module.
    assert cfg.on_starting.__module__ == "app.gunicorn_conf"
    assert cfg.worker_exit.__module__ == "app.gunicorn_conf"
