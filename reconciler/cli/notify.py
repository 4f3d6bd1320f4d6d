"""`homelab notify test`: one test message to every configured target, each result printed.

Reads the `notifications` of homelab.yaml at a commit (the secrets from
ROOT/secrets/), sends every target a test message at once (one thread per
target, through the same courier code as the notifier service: timeouts,
retries with backoff) and prints one line per target with the redacted URL
and the outcome. Exits 0 when every target took it, 1 otherwise (also when
an entry is unusable: its located error is printed). Nothing is recorded
in the event log: a test is not news. Registered in reconciler/cli/main.py.
"""

from __future__ import annotations

import threading

import click

from reconciler.cli.common import get_repo, get_root, repo_option, root_option
from reconciler.cli.run_notifier import check_ui_url
from reconciler.notifier.delivery import DeliverySettings, Outcome, Sender, deliver
from reconciler.notifier.signals import Message
from reconciler.notifier.targets import Target, read_targets
from reconciler.sources.git import GitRepo


@click.group()
def notify() -> None:
    """Notification targets (homelab.yaml `notifications`).

    \b
    Example:
      homelab notify test --repo ~/homelab --root /opt/homelab
    """


def _send(target: Target, message: Message, settings: DeliverySettings) -> Outcome:
    try:
        sender = Sender(target, settings)
    except Exception as exc:
        return Outcome(False, 0, 0.0, str(exc))
    return deliver(sender, message, settings, threading.Event(), settings.attempts)


@notify.command("test")
@repo_option
@root_option
@click.option("--ref", default=None, help="Commit or branch to read homelab.yaml from.")
@click.option("--ui-url", default=None, envvar="HOMELAB_UI_URL", help="The UI's address for links.")
@click.option("--attempts", type=click.IntRange(1, 10), default=2, show_default=True)
@click.option("--timeout", type=click.FloatRange(0.1), default=10.0, show_default=True)
def test(
    repo: str | None,
    root: str | None,
    ref: str | None,
    ui_url: str | None,
    attempts: int,
    timeout: float,
) -> None:
    """Send a test message to every target and print how each went.

    \b
    Example:
      homelab notify test --repo ~/homelab --root /opt/homelab
    """
    git = GitRepo(get_repo(repo))
    commit = git.resolve(ref)
    found = read_targets(git, commit, get_root(root).secrets)
    for problem in found.problems:
        click.echo(str(problem), err=True)
    if not found.targets:
        click.echo(f"no usable notification target in homelab.yaml at {commit[:12]}", err=True)
        raise SystemExit(1)
    link = check_ui_url(ui_url) + "/"
    message = Message(
        id=f"test-{commit[:12]}",
        event="test",
        severity="info",
        title="homelab: test notification",
        body=f"This target is configured in homelab.yaml at commit {commit[:7]}.\n\n{link}",
        refs=(),
        sources=(),
    )
    settings = DeliverySettings(attempts=attempts, read_timeout=timeout, backoff=0.5)
    results: dict[str, Outcome] = {}
    threads = [
        threading.Thread(
            target=lambda t=t: results.__setitem__(t.id, _send(t, message, settings)), daemon=True
        )
        for t in found.targets
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    failed = 0
    for target in found.targets:
        outcome = results[target.id]
        if outcome.ok:
            click.echo(f"ok      {target.id}  {target.shown}  ({outcome.seconds:.2f}s)")
        else:
            failed += 1
            tries = f"{outcome.attempts} tries" if outcome.attempts != 1 else "1 try"
            click.echo(f"FAILED  {target.id}  {target.shown}  ({tries}): {outcome.error}")
    if failed or found.problems:
        raise SystemExit(1)
