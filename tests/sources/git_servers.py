"""Real git servers on loopback for the remote-source tests, none mocked.

`Upstream` is a bare repository on disk with a work clone that commits and
pushes to it (the operator's laptop). Each server serves that bare
repository and can be stopped and started again on the same port:

- `GitDaemon`: `git daemon` (git://), no authentication;
- `HttpGit`: smart HTTP through `git http-backend` run by `fcgiwrap` behind
  `nginx` with basic auth (an htpasswd made by `openssl passwd`);
- `SshGit`: Debian's `sshd` with a deploy key in `authorized_keys` and a host
  key the control plane pins in `ROOT/git/known_hosts`;
- `FileRemote`: `file://`, "stopped" by moving the repository away.

`credentials(root, good)` writes what the control plane reads from
`ROOT/secrets/` (a wrong password or a key the server does not know when
`good` is False). Ports come from this helper's range (18500-18599).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import textwrap
import time
from pathlib import Path

from reconciler.runtime_root import RuntimeRoot
from tests.conftest import GitRepo

PORTS = range(18500, 18600)
SSHD = "/usr/sbin/sshd"
HTTP_BACKEND = "/usr/lib/git-core/git-http-backend"
USER = "deploy"
PASSWORD = "s3cret-Pass-7q2"  # the tests look for it everywhere it must not be
WRONG_PASSWORD = "wrong-Pass-9x1"

FILE_MANIFEST = """\
apiVersion: homelab.reconciler/v1alpha1
kind: File
metadata:
  name: {name}
spec:
  path: {path}
  content: "{content}"
"""


def free_port() -> int:
    """A free loopback port of this helper's range."""
    for port in PORTS:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 18500-18599")


def wait_listening(port: int, proc: subprocess.Popen[bytes] | None, what: str) -> None:
    deadline = time.monotonic() + 10
    while True:
        if proc is not None and proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise AssertionError(f"{what} exited: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < deadline, f"{what} did not listen on {port}"
            time.sleep(0.05)


def keygen(path: Path) -> str:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
        check=True,
        capture_output=True,
    )
    return path.with_suffix(".pub").read_text().strip()


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Upstream:
    """The remote repository (bare, served) and the clone that pushes to it."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.bare = base / "srv" / "upstream.git"
        self.bare.parent.mkdir(parents=True)
        subprocess.run(
            ["git", "init", "-q", "--bare", "-b", "main", str(self.bare)],
            check=True,
            capture_output=True,
        )
        self.work = GitRepo(base / "laptop")
        self.work.git("remote", "add", "origin", str(self.bare))
        self.out = base / "out"

    def file(self, name: str, content: str = "v1") -> None:
        path = self.out / f"{name}.txt"
        self.work.write(
            f"manifests/{name}.yaml", FILE_MANIFEST.format(name=name, path=path, content=content)
        )

    def push(self, message: str = "change", *, force: bool = False) -> str:
        sha = self.work.commit(message)
        self.work.git("push", "-q", *(["--force"] if force else []), "origin", "main")
        return sha


class Server:
    url: str
    name = "server"

    def __init__(self, upstream: Upstream, tmp: Path) -> None:
        self.upstream = upstream
        self.tmp = tmp / self.name
        self.tmp.mkdir()
        self.port = free_port()
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        for proc in self.procs:
            stop_process(proc)
        self.procs = []

    def credentials(self, root: RuntimeRoot, good: bool = True) -> None:
        """Nothing to give (no authentication)."""


class GitDaemon(Server):
    name = "git-daemon"

    def __init__(self, upstream: Upstream, tmp: Path) -> None:
        super().__init__(upstream, tmp)
        self.url = f"git://127.0.0.1:{self.port}/upstream.git"

    def start(self) -> None:
        srv = self.upstream.bare.parent
        proc = subprocess.Popen(
            [
                *("git", "daemon", "--reuseaddr", "--export-all", f"--base-path={srv}"),
                *("--listen=127.0.0.1", f"--port={self.port}", str(srv)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs = [proc]
        wait_listening(self.port, proc, "git daemon")


class HttpGit(Server):
    name = "http"

    def __init__(self, upstream: Upstream, tmp: Path) -> None:
        super().__init__(upstream, tmp)
        self.url = f"http://127.0.0.1:{self.port}/git/upstream.git"
        hashed = subprocess.run(
            ["openssl", "passwd", "-5", PASSWORD], capture_output=True, text=True, check=True
        ).stdout.strip()
        (self.tmp / "htpasswd").write_text(f"{USER}:{hashed}\n")
        self.sock = self.tmp / "fcgi.sock"
        t = self.tmp
        (self.tmp / "nginx.conf").write_text(
            textwrap.dedent(f"""\
            daemon off;
            worker_processes 1;
            user root;
            pid {t}/nginx.pid;
            error_log {t}/error.log;
            events {{}}
            http {{
              access_log off;
              client_body_temp_path {t}/body;
              proxy_temp_path {t}/proxy;
              fastcgi_temp_path {t}/fastcgi;
              uwsgi_temp_path {t}/uwsgi;
              scgi_temp_path {t}/scgi;
              server {{
                listen 127.0.0.1:{self.port};
                location ~ ^/git(/.*) {{
                  auth_basic "git";
                  auth_basic_user_file {t}/htpasswd;
                  client_max_body_size 0;
                  include /etc/nginx/fastcgi_params;
                  fastcgi_param SCRIPT_FILENAME {HTTP_BACKEND};
                  fastcgi_param GIT_HTTP_EXPORT_ALL "";
                  fastcgi_param GIT_PROJECT_ROOT {upstream.bare.parent};
                  fastcgi_param PATH_INFO $1;
                  fastcgi_param REMOTE_USER $remote_user;
                  fastcgi_pass unix:{self.sock};
                }}
              }}
            }}
            """)
        )

    def start(self) -> None:
        self.sock.unlink(missing_ok=True)
        fcgi = subprocess.Popen(
            ["/usr/sbin/fcgiwrap", "-f", "-c", "2", "-s", f"unix:{self.sock}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while not self.sock.exists():
            assert fcgi.poll() is None, "fcgiwrap exited"
            assert time.monotonic() < deadline, "fcgiwrap made no socket"
            time.sleep(0.02)
        nginx = subprocess.Popen(
            [
                *(shutil.which("nginx") or "/usr/sbin/nginx", "-c", str(self.tmp / "nginx.conf")),
                *("-p", str(self.tmp)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs = [nginx, fcgi]
        wait_listening(self.port, nginx, "nginx")

    def credentials(self, root: RuntimeRoot, good: bool = True) -> None:
        root.secrets.mkdir(parents=True, exist_ok=True)
        (root.secrets / "git-username").write_text(USER + "\n")
        (root.secrets / "git-password").write_text((PASSWORD if good else WRONG_PASSWORD) + "\n")


class SshGit(Server):
    name = "ssh"

    def __init__(self, upstream: Upstream, tmp: Path) -> None:
        super().__init__(upstream, tmp)
        self.url = f"ssh://root@127.0.0.1:{self.port}{upstream.bare}"
        t = self.tmp
        self.host_pub = keygen(t / "host_key")
        (t / "authorized_keys").write_text(keygen(t / "deploy_key") + "\n")
        keygen(t / "other_key")  # a key the server does not know
        (t / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {t / 'host_key'}\n"
            f"AuthorizedKeysFile {t / 'authorized_keys'}\nPidFile {t / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        )

    @property
    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {self.host_pub}\n"

    def start(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        proc = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", str(self.tmp / "sshd_config")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.procs = [proc]
        wait_listening(self.port, proc, "sshd")

    def credentials(self, root: RuntimeRoot, good: bool = True, *, pin: bool = True) -> None:
        root.secrets.mkdir(parents=True, exist_ok=True)
        key = root.secrets / "git-ssh-key"
        key.write_bytes((self.tmp / ("deploy_key" if good else "other_key")).read_bytes())
        os.chmod(key, 0o600)
        if pin:
            (root.path / "git").mkdir(parents=True, exist_ok=True)
            (root.path / "git" / "known_hosts").write_text(self.known_hosts_line)


class FileRemote(Server):
    name = "file"

    def __init__(self, upstream: Upstream, tmp: Path) -> None:
        super().__init__(upstream, tmp)
        self.url = f"file://{upstream.bare}"
        self.away = upstream.bare.with_name("upstream.away")

    def start(self) -> None:
        if self.away.exists():
            self.away.rename(self.upstream.bare)

    def stop(self) -> None:
        if self.upstream.bare.exists():
            self.upstream.bare.rename(self.away)


SERVERS: dict[str, type[Server]] = {
    "git": GitDaemon,
    "http": HttpGit,
    "ssh": SshGit,
    "file": FileRemote,
}
