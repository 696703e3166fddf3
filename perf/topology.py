"""Several ``usermgmt serve`` hosts behind nginx on one PostgreSQL, on one machine.

Every machine is a network namespace on one bridge (:mod:`perf.netns`),
with its own address in 10.213.0.0/24::

    client .100 ── nginx .10 ──┬── h1 .11 ─┐
                               ├── h2 .12 ─┼── PostgreSQL .2
                               └── h3 .13 ─┘

The hosts and nginx are configured from ``deploy/`` exactly as an
operator would: ``deploy/usermgmt.env`` and the ``ExecStart`` of
``deploy/systemd/usermgmt.service`` for each host, and
``deploy/nginx/usermgmt.conf`` verbatim with ``usermgmt-hosts.conf`` for
the load balancer. The documentation addresses (192.0.2.x) and paths in
those files are the only things substituted.

PostgreSQL is the server whose binaries ship in the ``pgserver`` wheel,
started here on TCP in its own namespace (password authentication for the
subnet only, no Unix socket), as an unprivileged account.

This process reaches the topology only from inside the client namespace
(:meth:`Topology.client`); the machine's own namespace has no route there.
Everything started is stopped, and every namespace deleted, by
:meth:`Topology.stop`, also after a failure half-way through
:meth:`Topology.start`. Start and restart processes from the thread that
built the topology: each child is told to stop when that thread ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import psutil
import psycopg

from perf.netns import Network, entered, exec_argv

__all__ = ["DEPLOY_DIR", "Database", "Host", "LoadBalancer", "Topology", "read_env_file",
           "unit_exec_start"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY_DIR = PROJECT_ROOT / "deploy"
ROLES = {"pg": 2, "lb": 10, "h1": 11, "h2": 12, "h3": 13, "client": 100}
HOSTS = ("h1", "h2", "h3")
# The documentation addresses in deploy/ and whose they are.
DOC_ADDRESSES = {"192.0.2.2": "pg", "192.0.2.10": "lb", "192.0.2.11": "h1",
                 "192.0.2.12": "h2", "192.0.2.13": "h3"}
DOC_BINARY = "/opt/usermgmt/.venv/bin/usermgmt"
DOC_DATA_DIR = "/var/lib/usermgmt"
DOC_PASSWORD = "change-me"
DOC_LOG_DIR = "/var/log/nginx/"
API_PORT = 8000
METRICS_PORT = 9100
PG_PORT = 5432
PG_ACCOUNT = "pgserver"  # the unprivileged account app.embedded_db runs PostgreSQL as
START_TIMEOUT = 120.0
STOP_TIMEOUT = 40.0


# -- deploy/ files -------------------------------------------------------


def read_env_file(text: str) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's ``EnvironmentFile=`` reads them
    (comments, blank lines and one level of quotes)."""
    env = {}
    for line in text.splitlines():
        line = line.strip()  # noqa: PLW2901
        if not line or line.startswith(("#", ";")):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"not KEY=VALUE: {line!r}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def unit_exec_start(unit: str, env: Mapping[str, str]) -> list[str]:
    """The ``ExecStart=`` of a systemd unit as argv, variables expanded as
    systemd does: ``$NAME`` splits into words, ``${NAME}`` is one word."""
    for line in unit.splitlines():
        if line.startswith("ExecStart="):
            command = line.partition("=")[2].strip()
            break
    else:
        raise ValueError("no ExecStart= in the unit")
    argv: list[str] = []
    for word in command.split():
        whole = re.fullmatch(r"\$(\w+)", word)
        if whole:
            argv.extend(env.get(whole.group(1), "").split())
        else:
            argv.append(re.sub(r"\$\{(\w+)\}", lambda m: env.get(m.group(1), ""), word))
    return argv


def _substitute(text: str, replacements: Mapping[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


# -- processes -------------------------------------------------------------


def _stop_with_parent_thread() -> None:
    """In the child before exec: SIGTERM it if the thread that started it ends
    (also when the test run is killed and runs no ``finally``)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class _Process:
    """One process started in a namespace, logging to a file."""

    name: str
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    def spawn(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
              user: str | None = None) -> None:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in reap()
        self.process = subprocess.Popen(
            argv, env=dict(env) if env is not None else None, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            cwd=PROJECT_ROOT, preexec_fn=_stop_with_parent_thread,  # noqa: PLW1509
        )

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} was never started"
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: int) -> None:
        if self.running():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def reap(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """Wait for it; SIGKILL its whole process group if it overruns."""
        code = None
        if self.process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                code = self.process.wait(timeout)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""


def _wait(check: Any, timeout: float, what: str, log: _Process | None = None) -> float:
    """Poll ``check()`` until true; seconds taken. Raises RuntimeError at the deadline."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if log is not None and log.process is not None and not log.running():
            raise RuntimeError(f"{what}: {log.name} exited with {log.process.returncode}:\n"
                               f"{log.log_tail()}")
        with contextlib.suppress(Exception):
            if check():
                return time.monotonic() - started
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {timeout} s" + (f":\n{log.log_tail()}" if log else ""))


def _traversable(path: Path) -> None:
    """Let an unprivileged account reach ``path`` (o+x on it and its parents)."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def http_get(url: str, token: str | None = None, timeout: float = 5.0) -> tuple[int | None, bytes]:
    """Status and body of a GET (None: no answer). Call inside the client namespace."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()
    except (urllib.error.URLError, OSError):
        return None, b""


# -- the machines ------------------------------------------------------------


@dataclass
class Database:
    """PostgreSQL on TCP in its own namespace, its data under ``workdir``."""

    namespace: str
    address: str
    subnet: str
    workdir: Path
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    proc: _Process = field(init=False)

    def __post_init__(self) -> None:
        self.pgdata = self.workdir / "pgdata"
        self.proc = _Process("postgres", self.workdir / "postgresql.log")

    @property
    def bin_dir(self) -> Path:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pgserver looks for an XDG directory it never uses
            from pgserver._commands import POSTGRES_BIN_PATH
        return Path(POSTGRES_BIN_PATH)

    def url(self, user: str = "usermgmt", database: str = "usermgmt") -> str:
        password = self.password
        return f"postgresql://{user}:{password}@{self.address}:{PG_PORT}/{database}"

    def _as_account(self, argv: Sequence[str]) -> list[str]:
        return ["setpriv", f"--reuid={PG_ACCOUNT}", f"--regid={PG_ACCOUNT}", "--clear-groups",
                "--", *argv]

    def init(self) -> None:
        """initdb as the unprivileged account; password logins from the subnet only."""
        try:
            account = pwd.getpwnam(PG_ACCOUNT)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin",
                            PG_ACCOUNT], check=True, capture_output=True)
            account = pwd.getpwnam(PG_ACCOUNT)
        self.workdir.mkdir(parents=True, exist_ok=True)
        _traversable(self.workdir)
        _traversable(self.bin_dir)
        for path in (self.workdir, self.proc.log_path):
            if not path.exists():
                path.touch()
            os.chown(path, account.pw_uid, account.pw_gid)
        pwfile = self.workdir / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chown(pwfile, account.pw_uid, account.pw_gid)
        pwfile.chmod(0o600)
        completed = subprocess.run(
            self._as_account([str(self.bin_dir / "initdb"), "-D", str(self.pgdata),
                              "-U", "postgres", f"--pwfile={pwfile}", "--auth=scram-sha-256",
                              "--encoding=UTF8", "--locale=C"]),
            capture_output=True, text=True, timeout=120, check=False, cwd=self.workdir)
        pwfile.unlink()
        if completed.returncode != 0:
            raise RuntimeError(f"initdb failed: {completed.stdout}{completed.stderr}")
        (self.pgdata / "pg_hba.conf").write_text(
            f"host all all {self.subnet} scram-sha-256\n")

    def start(self) -> None:
        self.proc.spawn(exec_argv(self.namespace, self._as_account([
            str(self.bin_dir / "postgres"), "-D", str(self.pgdata),
            "-c", f"listen_addresses={self.address}", "-c", f"port={PG_PORT}",
            "-c", "unix_socket_directories=", "-c", "max_connections=200",
            "-c", "shared_buffers=128MB"])))

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds until it accepts a login. Call inside the client namespace."""
        def accepts() -> bool:
            with psycopg.connect(self.url("postgres", "postgres"), connect_timeout=2):
                return True
        return _wait(accepts, timeout, "PostgreSQL", self.proc)

    def create_service_database(self) -> None:
        """The service's role and database. Call inside the client namespace."""
        with psycopg.connect(self.url("postgres", "postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE ROLE usermgmt LOGIN PASSWORD '{self.password}'")
            conn.execute("CREATE DATABASE usermgmt OWNER usermgmt")

    def stop(self) -> None:
        """Fast shutdown (SIGINT): sessions are ended, nothing committed is lost."""
        self.proc.signal(signal.SIGINT)
        self.proc.reap(60)


@dataclass
class Host:
    """One application host: ``usermgmt serve`` as ``deploy/`` runs it."""

    name: str
    namespace: str
    address: str
    env: dict[str, str]
    argv: list[str]
    workers: int
    proc: _Process

    @property
    def url(self) -> str:
        return f"http://{self.address}:{API_PORT}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.address}:{METRICS_PORT}/metrics"

    def start(self) -> None:
        self.proc.spawn(exec_argv(self.namespace, self.argv), self.env)

    def worker_pids(self) -> set[int]:
        if not self.proc.running():
            return set()
        with contextlib.suppress(psutil.Error):
            return {child.pid for child in psutil.Process(self.proc.pid).children()}
        return set()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> float:
        """Seconds until every worker is forked and ``/readyz`` answers 200
        several times in a row. Call inside the client namespace."""
        def ready() -> bool:
            return len(self.worker_pids()) >= self.workers and all(
                http_get(self.url + "/readyz", timeout=2)[0] == 200 for _ in range(4))
        return _wait(ready, timeout, f"host {self.name}", self.proc)

    def kill(self) -> set[int]:
        """``kill -9`` the gunicorn master; returns the workers it leaves behind."""
        workers = self.worker_pids()
        self.proc.signal(signal.SIGKILL)
        assert self.proc.process is not None
        self.proc.process.wait(10)
        return workers

    def reload(self) -> None:
        """``systemctl reload``: the unit's ``ExecReload`` sends HUP to the master."""
        self.proc.signal(signal.SIGHUP)

    def stop(self) -> int | None:
        """``systemctl stop``: SIGTERM to the master (KillMode=mixed), then wait."""
        self.proc.signal(signal.SIGTERM)
        return self.proc.reap(STOP_TIMEOUT)


@dataclass
class LoadBalancer:
    """nginx in its namespace, run with ``deploy/nginx/`` as its site."""

    namespace: str
    address: str
    prefix: Path
    host_addresses: dict[str, str]
    proc: _Process = field(init=False)

    def __post_init__(self) -> None:
        self.proc = _Process("nginx", self.prefix / "nginx.out")
        self.access_log = self.prefix / "logs" / "usermgmt-access.log"
        self.error_log = self.prefix / "logs" / "error.log"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def configure(self, hosts: Sequence[str]) -> None:
        """Write the configuration: ``deploy/nginx/usermgmt.conf`` as it is,
        ``usermgmt-hosts.conf`` with the lines of ``hosts`` only."""
        for directory in ("logs", "conf.d", "tmp"):
            (self.prefix / directory).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.prefix / "tmp", "www-data", "www-data")
        site = (DEPLOY_DIR / "nginx" / "usermgmt.conf").read_text()
        (self.prefix / "conf.d" / "usermgmt.conf").write_text(
            site.replace(DOC_LOG_DIR, f"{self.prefix}/logs/"))
        example = (DEPLOY_DIR / "nginx" / "usermgmt-hosts.conf").read_text().splitlines()
        lines = []
        for line in example:
            match = re.match(r"\s*server\s+([\d.]+):", line)
            if match is None:
                lines.append(line)
            elif DOC_ADDRESSES.get(match.group(1)) in hosts:
                role = DOC_ADDRESSES[match.group(1)]
                lines.append(line.replace(match.group(1), self.host_addresses[role]))
        (self.prefix / "usermgmt-hosts.conf").write_text("\n".join(lines) + "\n")
        tmp = self.prefix / "tmp"
        # Debian's /etc/nginx/nginx.conf, reduced to what the site needs,
        # with this run's own pid, logs and temporary files.
        (self.prefix / "nginx.conf").write_text(f"""\
user www-data;
worker_processes auto;
pid {self.prefix}/nginx.pid;
error_log {self.error_log} warn;
events {{
    worker_connections 1024;
}}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 65;
    access_log off;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    include conf.d/usermgmt.conf;
}}
""")
        self._nginx("-t")

    def _nginx(self, *args: str) -> None:
        completed = subprocess.run(
            exec_argv(self.namespace, ["nginx", "-p", str(self.prefix), "-c",
                                       str(self.prefix / "nginx.conf"), *args]),
            capture_output=True, text=True, timeout=30, check=False)
        if completed.returncode != 0:
            raise RuntimeError(f"nginx {' '.join(args)}: {completed.stderr}")

    def start(self) -> None:
        self.proc.spawn(exec_argv(self.namespace, [
            "nginx", "-p", str(self.prefix), "-c", str(self.prefix / "nginx.conf"),
            "-g", "daemon off;"]))

    def use_hosts(self, hosts: Sequence[str]) -> None:
        """Put only ``hosts`` in the upstream and reload nginx gracefully."""
        self.configure(hosts)
        self.proc.signal(signal.SIGHUP)
        # Old workers finish their requests; new ones answer at once.
        time.sleep(1.0)

    def wait_ready(self, timeout: float = 30.0) -> float:
        return _wait(lambda: http_get(self.url + "/livez", timeout=2)[0] == 200, timeout,
                     "nginx", self.proc)

    def access_entries(self) -> list[dict[str, Any]]:
        """The site's access log, one dict per request (see ``log_format usermgmt``)."""
        entries = []
        with contextlib.suppress(FileNotFoundError):
            for line in self.access_log.read_text(errors="replace").splitlines():
                with contextlib.suppress(ValueError):
                    entries.append(json.loads(line))
        return entries

    def stop(self) -> None:
        self.proc.signal(signal.SIGQUIT)  # graceful: finish requests, then exit
        self.proc.reap(20)


# -- the whole ---------------------------------------------------------------


@dataclass
class Topology:
    """PostgreSQL, three hosts, nginx and a client, each in its own namespace.

    Args:
        workdir: data directories, logs and nginx's prefix.
        host_env: settings given to every host on top of ``deploy/usermgmt.env``.
        users: users seeded (ids 1..users) before the hosts start.
    """

    workdir: Path
    host_env: Mapping[str, str] = field(default_factory=dict)
    users: int = 1000
    network: Network = field(default_factory=lambda: Network(dict(ROLES)))
    database: Database = field(init=False)
    hosts: dict[str, Host] = field(init=False, default_factory=dict)
    lb: LoadBalancer = field(init=False)
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    token: str = ""

    def __post_init__(self) -> None:
        net = self.network
        self.database = Database(net.namespace("pg"), net.address("pg"), str(net.subnet),
                                 self.workdir / "pg")
        self.lb = LoadBalancer(net.namespace("lb"), net.address("lb"), self.workdir / "nginx",
                               {role: net.address(role) for role in HOSTS})

    @property
    def client_namespace(self) -> str:
        return self.network.namespace("client")

    def client(self) -> contextlib.AbstractContextManager[None]:
        """Run the calling thread (and threads it starts) as the client machine."""
        return entered(self.client_namespace)

    @property
    def url(self) -> str:
        """The service, through nginx."""
        return self.lb.url

    def host_settings(self, name: str) -> dict[str, str]:
        """``deploy/usermgmt.env`` for host ``name``, addresses and paths substituted."""
        addresses = {doc: self.network.address(role) for doc, role in DOC_ADDRESSES.items()}
        # The example file is the first host's: its address becomes this host's.
        addresses["192.0.2.11"] = self.network.address(name)
        text = _substitute((DEPLOY_DIR / "usermgmt.env").read_text(), {
            **addresses, DOC_PASSWORD: self.database.password,
            DOC_DATA_DIR: str(self.workdir / name)})
        return read_env_file(text)

    def _host(self, name: str) -> Host:
        settings = {**self.host_settings(name), **self.host_env}
        unit = (DEPLOY_DIR / "systemd" / "usermgmt.service").read_text()
        script = str(Path(sys.executable).with_name("usermgmt"))
        argv = unit_exec_start(unit.replace(DOC_BINARY, script), settings)
        workers = int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **settings}
        (self.workdir / name).mkdir(parents=True, exist_ok=True)
        return Host(name, self.network.namespace(name), self.network.address(name), env, argv,
                    workers, _Process(name, self.workdir / f"{name}.log"))

    def start(self) -> Topology:
        """Build everything; on any failure, tear down what was built and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from perf.servers import create_admin, log_in, seed_users

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.network.create()
        self.database.init()
        self.database.start()
        with self.client():
            self.database.wait_ready()
            self.database.create_service_database()
            url = self.database.url()
            seed_users(url, self.users)
            create_admin(url, self.admin_password)
        self.hosts = {name: self._host(name) for name in HOSTS}
        for host in self.hosts.values():
            host.start()
        self.lb.configure(HOSTS)
        self.lb.start()
        with self.client():
            for host in self.hosts.values():
                host.wait_ready()
            self.lb.wait_ready()
            self.token = log_in(self.url, self.admin_password)

    def restart_host(self, name: str) -> Host:
        """Start host ``name`` again (as systemd's ``Restart=always`` would)."""
        host = self.hosts[name]
        host.proc.reap(0)
        host.start()
        return host

    def stop(self) -> None:
        """Stop every process and delete every namespace; safe to call twice."""
        with contextlib.suppress(Exception):
            self.lb.stop()
        for host in self.hosts.values():
            with contextlib.suppress(Exception):
                host.stop()
        with contextlib.suppress(Exception):
            self.database.stop()
        self._kill_leftovers()
        self.network.destroy()

    def _kill_leftovers(self) -> None:
        """Anything still running inside one of the namespaces (say, the
        workers of a master killed with -9) is killed: a namespace with a
        process in it outlives its deletion."""
        for namespace in self.network.created:
            completed = subprocess.run(["ip", "netns", "pids", namespace], capture_output=True,
                                       text=True, timeout=30, check=False)
            for pid in completed.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)

    def __enter__(self) -> Topology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(workdir: Path, **kwargs: Any) -> Iterator[Topology]:
    """A started :class:`Topology`, stopped at the end."""
    topology = Topology(workdir, **kwargs)
    with topology:
        yield topology
