"""The usermgmt command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.cli import build_parser


def test_the_gunicorn_master_never_imports_prometheus_client() -> None:
    """Metrics created in the master would appear in /metrics as a phantom process."""
    code = ("import sys, app.cli, app.gunicorn_conf; app.cli.build_parser(); "
            "sys.exit('prometheus_client' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.bind == "127.0.0.1:8000"
    assert args.threads >= 1 and args.workers >= 1


@pytest.mark.parametrize("argv", [["serve", "--bind", "nope"], ["serve", "--workers", "0"],
                                  ["serve", "--threads", "x"], ["frobnicate"]])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
