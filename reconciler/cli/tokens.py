"""`homelab tokens`: create, list and revoke the agent tokens of the HTTP API.

An agent token lets one external agent `POST /api/events` under its own name
(producer `ingest-<name>`) and nothing else: every operator endpoint answers
403, and after `revoke` the token gets 401. `create` prints the secret once;
only its SHA-256 is kept, in `ROOT/secrets/agent_tokens.json` (0600). Each
change is audited as a `token.created` / `token.revoked` event under the
operator's `cli-<name>` producer, naming the agent, never the token. The
storage and lookup live in `reconciler.api.agent_tokens`. Called through
`reconciler.cli.main`.
"""

from __future__ import annotations

import click
import orjson

from reconciler.api.agent_tokens import AgentTokens, check_agent_name
from reconciler.cli.actions import as_option, operator_log, operator_name, producer_for
from reconciler.cli.common import get_root, root_option


@click.group()
def tokens() -> None:
    """Agent tokens: let a script ingest events without the operator's token.

    \b
    Examples:
      homelab tokens create backup-bot --as alice
      homelab tokens list
      homelab tokens revoke backup-bot --as alice
    """


@tokens.command("create")
@click.argument("name")
@root_option
@as_option
def create_token(name: str, root: str | None, as_name: str | None) -> None:
    """Create the token of agent NAME and print it once (it is not stored).

    \b
    Example:
      homelab tokens create backup-bot --as alice
      curl -H "Authorization: Bearer $TOKEN" -d '{"agent": "backup-bot", "events":
        [{"type": "backup.finished", "data": {"ok": true}}]}' http://127.0.0.1:8080/api/events
    """
    runtime = get_root(root).ensure()
    operator = operator_name(as_name)
    token = AgentTokens(runtime).create(check_agent_name(name), operator)
    with operator_log(runtime, producer_for(operator)) as events:
        events.append("token.created", None, {"agent": name, "actor": operator}, sync=True)
    click.echo(f"Agent token for {name} (shown once; only its hash is kept):")
    click.echo(token)


@tokens.command("list")
@root_option
@click.option("--json", "as_json", is_flag=True, help="Print the tokens' records as JSON.")
def list_tokens(root: str | None, as_json: bool) -> None:
    """List agent tokens with who created or revoked them (never the secrets).

    \b
    Example:
      homelab tokens list
    """
    found = AgentTokens(get_root(root)).list()
    if as_json:
        rows = [
            {
                "name": t.name,
                "active": t.active,
                "createdAt": t.created_at,
                "createdBy": t.created_by,
                "revokedAt": t.revoked_at,
                "revokedBy": t.revoked_by,
            }
            for t in found
        ]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        click.echo("No agent tokens (create one with `homelab tokens create NAME`).")
        return
    for t in found:
        state = "active" if t.active else f"revoked {t.revoked_at} by {t.revoked_by}"
        click.echo(f"{t.name:<24} created {t.created_at} by {t.created_by}  {state}")


@tokens.command("revoke")
@click.argument("name")
@root_option
@as_option
def revoke_token(name: str, root: str | None, as_name: str | None) -> None:
    """Revoke agent NAME's token: from its next request on it gets 401.

    \b
    Example:
      homelab tokens revoke backup-bot --as alice
    """
    runtime = get_root(root)
    operator = operator_name(as_name)
    if not AgentTokens(runtime).revoke(name, operator):
        click.echo(f"{name}: already revoked")
        return
    with operator_log(runtime, producer_for(operator)) as events:
        events.append("token.revoked", None, {"agent": name, "actor": operator}, sync=True)
    click.echo(f"{name}: revoked")
