"""`homelab actions`: list, show, approve and reject queued actions from a terminal.

The operator is `--as NAME`, else `$HOMELAB_OPERATOR`, else the OS user
(never a name reserved for the services, such as `executor`); the
name goes into every `action.<state>` event as the actor, written under the
producer `cli-<name>` (sanitized to the producer pattern). Approving an
action that moved on already (approved by someone else, superseded) is
reported as such and is not an error: the rename decides who wins. Two
terminals of the same operator take turns on a small lock in `state/`
because one producer's event file has one writer at a time.
"""

from __future__ import annotations

import fcntl
import getpass
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager

import click
import orjson

from reconciler.cli.common import get_root, root_option, use_colour
from reconciler.diff import render_change
from reconciler.errors import ConfigError, QueueConflict, StorageError
from reconciler.events.log import EventLog, reserved_actor
from reconciler.queue import ActionQueue
from reconciler.queue.action import action_to_dict
from reconciler.resources.key import ResourceKey
from reconciler.runtime_root import QUEUE_STATES, RuntimeRoot
from reconciler.supervisor.flap import clear_flapping

LIVE = ("pending", "approved", "running")
_UNSAFE = re.compile(r"[^a-z0-9.-]+")


def operator_name(flag: str | None) -> str:
    """Who is acting: the flag, then $HOMELAB_OPERATOR, then the OS user."""
    name = (flag or os.environ.get("HOMELAB_OPERATOR") or getpass.getuser() or "").strip()
    name = "".join(c for c in name if c.isprintable())[:64]
    if not name:
        raise ConfigError("no operator name: give --as NAME or set $HOMELAB_OPERATOR")
    reserved = reserved_actor(name)
    if reserved:
        raise ConfigError(f"--as / $HOMELAB_OPERATOR: {reserved}")
    return name


def producer_for(operator: str) -> str:
    """`cli-<operator>` reduced to the event producer pattern."""
    slug = _UNSAFE.sub("-", operator.lower()).strip(".-")[:59] or "unknown"
    return f"cli-{slug}"


@contextmanager
def operator_log(root: RuntimeRoot, producer: str) -> Iterator[EventLog]:
    """The producer's event log, held only for one transition at a time."""
    lock = root.state / f"{producer}.lock"
    try:
        root.state.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StorageError(f"lock {lock.name}", lock, exc, "nothing was moved") from exc
    events = EventLog(root, producer)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield events
    finally:
        events.close()
        os.close(fd)


def _resolve(queue: ActionQueue, given: str) -> str:
    """A full id from an id or a unique prefix (as `list` prints them)."""
    given = given.strip().lower()
    if len(given) >= 20:
        return given
    matches = [aid for aid in queue.snapshot() if aid.startswith(given)] if given else []
    if len(set(matches)) == 1:
        return matches[0]
    if matches:
        raise click.ClickException(f"{given}: ambiguous, matches {len(set(matches))} actions")
    return given


as_option = click.option(
    "--as", "as_name", metavar="NAME", default=None, help="Operator name recorded in the event."
)


@click.group()
def actions() -> None:
    """The action queue: review, approve and reject what the supervisor proposed.

    \b
    Examples:
      homelab actions list
      homelab actions show 3f2a9c
      homelab actions approve 3f2a9c --as alice
    """


@actions.command("list")
@root_option
@click.option(
    "--state",
    type=click.Choice([*QUEUE_STATES, "live", "all"]),
    default="live",
    show_default=True,
    help="Queue folder to list (live = pending, approved, running).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the action documents as JSON.")
def list_actions(root: str | None, state: str, as_json: bool) -> None:
    """List actions, oldest first.

    \b
    Example:
      homelab actions list --state pending --root /opt/homelab
    """
    queue = ActionQueue(get_root(root))
    states = LIVE if state == "live" else QUEUE_STATES if state == "all" else (state,)
    rows = [(s, a) for s in states for a in queue.actions(s)]
    rows.sort(key=lambda row: row[1].created_at)
    if as_json:
        docs = [{**action_to_dict(a), "state": s} for s, a in rows]
        click.echo(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode())
        return
    if not rows:
        click.echo(f"No {state} actions.")
        return
    click.echo(f"{'ID':<20}  {'STATE':<10}  {'OP':<7}  {'RESOURCE':<32}  {'COMMIT':<12}  CREATED")
    for s, a in rows:
        auto = "  (auto)" if a.auto_approve else ""
        click.echo(
            f"{a.id:<20}  {s:<10}  {a.operation:<7}  {a.key!s:<32}  "
            f"{a.commit[:12]:<12}  {a.created_at}{auto}"
        )


@actions.command("show")
@root_option
@click.argument("action_id")
@click.option("--json", "as_json", is_flag=True, help="Print the action document as JSON.")
def show(root: str | None, action_id: str, as_json: bool) -> None:
    """Show one action: where it stands and its diff, rendered like `homelab plan`.

    ACTION_ID may be a unique prefix, as `homelab actions list` prints it.

    \b
    Example:
      homelab actions show 3f2a9c
    """
    queue = ActionQueue(get_root(root))
    found = queue.get(_resolve(queue, action_id))
    if found is None:
        raise click.ClickException(f"action {action_id} not found")
    state, action = found
    if as_json:
        doc = {**action_to_dict(action), "state": state}
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
        return
    basis = action.basis or "none (the resource did not exist)"
    click.echo(f"Action {action.id}  [{state}]")
    click.echo(f"  desired commit {action.commit}  observed basis {basis}")
    click.echo(
        f"  created {action.created_at}  auto-approve {'yes' if action.auto_approve else 'no'}"
    )
    for entry in action.moves:
        why = f" ({entry.reason})" if entry.reason else ""
        click.echo(f"  {entry.at}  {entry.state} by {entry.actor}{why}")
    if action.outcome:
        for key, value in sorted(action.outcome.items()):
            shown = value if isinstance(value, str) else orjson.dumps(value).decode()
            click.echo(f"  outcome {key}: {shown}")
    click.echo("")
    click.echo(render_change(action.change(), colour=use_colour()))


def _decide(root: RuntimeRoot, ids: list[str], dst: str, operator: str, reason: str | None) -> int:
    """Move each pending id to `dst`; the number of ids that were not found."""
    missing = 0
    producer = producer_for(operator)
    verb = "approved" if dst == "approved" else "rejected"
    for given in ids:
        with operator_log(root, producer) as events:
            queue = ActionQueue(root, events)
            action_id = _resolve(queue, given)
            try:
                queue.move(action_id, "pending", dst, actor=operator, reason=reason)
                click.echo(f"{action_id}: {verb} by {operator}")
            except QueueConflict as exc:
                if exc.current is None:
                    click.echo(f"{given}: not found", err=True)
                    missing += 1
                else:
                    click.echo(f"{action_id}: already {exc.current}, nothing to do")
    return missing


@actions.command("approve")
@root_option
@as_option
@click.argument("ids", nargs=-1)
@click.option("--all", "approve_all", is_flag=True, help="Approve every pending action.")
def approve(root: str | None, as_name: str | None, ids: tuple[str, ...], approve_all: bool) -> None:
    """Approve pending actions; the executor runs them next.

    \b
    Example:
      homelab actions approve 3f2a9c 8be01d --as alice
    """
    runtime = get_root(root)
    wanted = list(ids)
    if approve_all:
        wanted += ActionQueue(runtime).ids("pending")
    if not wanted:
        raise click.UsageError("give action ids or --all")
    if _decide(runtime, wanted, "approved", operator_name(as_name), None):
        raise SystemExit(1)


@actions.command("reject")
@root_option
@as_option
@click.argument("ids", nargs=-1, required=True)
@click.option("--reason", required=True, help="Why, for the event log and the UI.")
def reject(root: str | None, as_name: str | None, ids: tuple[str, ...], reason: str) -> None:
    """Reject pending actions; the same change is not proposed again.

    \b
    Example:
      homelab actions reject 3f2a9c --reason "not during the backup"
    """
    if _decide(get_root(root), list(ids), "rejected", operator_name(as_name), reason):
        raise SystemExit(1)


@actions.command("clear-flap")
@root_option
@as_option
@click.argument("resource", metavar="KIND/NAME")
def clear_flap(root: str | None, as_name: str | None, resource: str) -> None:
    """Let the supervisor propose actions again for a resource marked Flapping.

    \b
    Example:
      homelab actions clear-flap Container/web --as alice
    """
    kind, _, name = resource.partition("/")
    if not kind or not name:
        raise click.UsageError(f"{resource!r}: expected KIND/NAME, e.g. Container/web")
    runtime = get_root(root)
    operator = operator_name(as_name)
    was = clear_flapping(runtime, ResourceKey(kind, name))
    with operator_log(runtime, producer_for(operator)) as events:
        data = {"type": "Flapping", "status": "False", "reason": "ClearedByOperator"}
        message = f"cleared by {operator}"
        events.append(
            "resource.condition", ResourceKey(kind, name), {**data, "message": message}, sync=True
        )
    click.echo(f"{resource}: {'cleared' if was else 'was not flapping'}")
