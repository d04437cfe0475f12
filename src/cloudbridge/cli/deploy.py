"""Endpoint commands: ``deploy``, ``endpoints``, ``invoke`` and ``undeploy`` (a thin layer over the SDK).

::

    cloudbridge deploy ./model --name sentiment            # local endpoint on 127.0.0.1
    cloudbridge endpoints [--json]
    cloudbridge invoke sentiment --data '{"inputs": ["great film"]}'     # or --data @req.json, --data -
    cloudbridge undeploy sentiment
"""

from __future__ import annotations

import sys
from typing import Any

import typer

__all__ = ["register"]

STATE_STYLES = {"InService": "green", "Creating": "yellow", "Updating": "yellow", "Unhealthy": "red",
                "Stopped": "red", "Failed": "red", "Deleting": "magenta"}


def _deploy_api(provider: str) -> Any:
    from cloudbridge.backends import get_provider

    return get_provider(provider).deploy


def _parse_env(pairs: list[str]) -> dict[str, str]:
    from cloudbridge.errors import InvalidSpec

    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidSpec(f"{pair!r} is not KEY=VALUE", field="--env")
        env[key] = value
    return env


def read_data(data: str) -> Any:
    """The JSON payload of ``--data``: inline JSON, ``@file.json``, or ``-`` for stdin."""
    import json

    from cloudbridge.errors import InvalidSpec, NotFound

    source = "--data"
    if data == "-":
        text, source = sys.stdin.read(), "stdin"
    elif data.startswith("@"):
        path = data[1:]
        try:
            with open(path, encoding="utf-8") as stream:
                text = stream.read()
        except FileNotFoundError:
            raise NotFound(f"--data: no such file: {path}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidSpec(f"cannot read the payload: {exc}", source=path) from None
        source = path
    else:
        text = data
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} (column {exc.colno})"
        if source == "--data":
            raise InvalidSpec(message, field="--data") from None
        raise InvalidSpec(message, source=source, line=exc.lineno) from None


def _endpoint_row(endpoint: Any) -> list[Any]:
    from cloudbridge.cli._output import format_age

    extra = endpoint.extra or {}
    return [endpoint.name, endpoint.provider, endpoint.state, endpoint.url or "", endpoint.model or "",
            format_age(extra.get("created_at"))]


def deploy_command(
    model: str = typer.Argument(..., help="Model directory, .tar.gz, storage URI, or an endpoint YAML file."),
    name: str = typer.Option(None, "--name", "-n", help="Endpoint name (required unless MODEL is a YAML spec)."),
    provider: str = typer.Option(None, "--provider", "-p", help="Where to deploy (default: local)."),
    handler: str = typer.Option(None, "--handler", help="inference.py with model_fn/predict_fn."),
    task: str = typer.Option(None, "--task", help="text-classification | token-classification (default: auto)."),
    port: int = typer.Option(None, "--port", help="Local backend: port on 127.0.0.1 (default: a free one)."),
    instance_type: str = typer.Option(None, "--instance-type", help="Cloud instance type."),
    env: list[str] = typer.Option([], "--env", "-e", help="KEY=VALUE for the server's environment (repeatable)."),
    auth_token: str = typer.Option(
        None, "--auth-token", help="Local: require this bearer token on /invocations; 'generate' makes one, shown once."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the endpoint as JSON."),
) -> None:
    """Deploy a model behind an HTTP endpoint and wait until it serves."""
    from cloudbridge import sdk

    fields: dict[str, Any] = {}
    for key, value in (("handler", handler), ("task", task), ("port", port), ("instance_type", instance_type),
                       ("auth_token", auth_token)):
        if value is not None:
            fields[key] = value
    if env:
        fields["env"] = _parse_env(env)
    if sys.stderr.isatty():
        typer.secho(f"deploying {model} (waiting for GET /ping) ...", err=True, fg="cyan")
    endpoint = sdk.deploy(model, name=name, provider=provider, **fields)
    generated = endpoint.extra.pop("auth_token", None)
    for warning in endpoint.extra.get("warnings") or []:
        typer.secho(f"warning: {warning}", err=True, fg="yellow")
    if generated:  # shown once: it is stored nowhere
        typer.secho(f"bearer token (shown once, store it now): {generated}", err=True, fg="yellow")
        typer.secho("invoke with: CLOUDBRIDGE_ENDPOINT_TOKEN=<token> cloudbridge invoke ...", err=True, dim=True)
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json(endpoint.to_dict())
        return
    typer.secho(f"endpoint {endpoint.name} {endpoint.state} on {endpoint.provider}", err=True, fg="green")
    if endpoint.url:
        typer.echo(endpoint.url)
    typer.secho(
        f"try: cloudbridge invoke {endpoint.name} --data '{{\"inputs\": [\"some text\"]}}'", err=True, dim=True
    )


def endpoints_command(
    provider: str = typer.Option("local", "--provider", "-p", help="Whose endpoints to list."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List endpoints and their live state (a dead local server shows as Stopped)."""
    from cloudbridge.cli._output import echo_json, print_table

    endpoints = _deploy_api(provider).list()
    if json_output:
        echo_json([e.to_dict() for e in endpoints])
        return
    if not endpoints:
        typer.secho(f"no endpoints on {provider}", err=True)
        return
    print_table(["NAME", "PROVIDER", "STATE", "URL", "MODEL", "CREATED"], [_endpoint_row(e) for e in endpoints],
                styles=STATE_STYLES)


def invoke_command(
    name: str = typer.Argument(..., help="Endpoint name."),
    data: str = typer.Option(..., "--data", help="JSON payload, @file.json, or - for stdin."),
    provider: str = typer.Option("local", "--provider", "-p", help="The endpoint's provider."),
    auth_token: str = typer.Option(
        None, "--auth-token", envvar="CLOUDBRIDGE_ENDPOINT_TOKEN", help="Bearer token of a local endpoint."
    ),
) -> None:
    """Send a JSON payload to an endpoint and print its JSON reply."""
    from cloudbridge.cli._output import echo_json

    payload = read_data(data)
    api = _deploy_api(provider)
    reply = api.invoke(name, payload, auth_token=auth_token) if auth_token else api.invoke(name, payload)
    if isinstance(reply, (dict, list)):
        echo_json(reply)
    else:
        typer.echo(str(reply))


def undeploy_command(
    name: str = typer.Argument(..., help="Endpoint name."),
    provider: str = typer.Option("local", "--provider", "-p", help="The endpoint's provider."),
) -> None:
    """Stop an endpoint and delete everything created for it."""
    _deploy_api(provider).delete(name)
    typer.secho(f"endpoint {name} deleted", err=True, fg="green")


def register(app: typer.Typer) -> None:
    """Add ``deploy``, ``endpoints``, ``invoke`` and ``undeploy`` to the root app."""
    app.command("deploy", rich_help_panel="Endpoints")(deploy_command)
    app.command("endpoints", rich_help_panel="Endpoints")(endpoints_command)
    app.command("invoke", rich_help_panel="Endpoints")(invoke_command)
    app.command("undeploy", rich_help_panel="Endpoints")(undeploy_command)
