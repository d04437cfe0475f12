"""``cloudbridge storage ls|cp|rm|du|sync``: data on any storage, with local paths or URIs."""

from __future__ import annotations

from typing import Any

import typer

__all__ = ["register"]

storage_app = typer.Typer(
    name="storage",
    help="List, copy, delete, measure and sync data on local paths, s3://, gs:// and az:// URIs.",
    no_args_is_help=True,
)


def _human(n: float) -> str:
    from cloudbridge.transfers.progress import human_bytes

    return human_bytes(n)


def _when(mtime: float | None) -> str:
    if mtime is None:
        return ""
    import time

    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(mtime))


@storage_app.command("ls")
def ls_command(
    uri: str = typer.Argument(..., help="A local path or URI (s3://bucket/prefix)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="List every object below, not just children."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """List objects under a prefix (sub-prefixes end in '/'), or show one object."""
    from cloudbridge.transfers.ops import ls

    items = ls(uri, recursive=recursive)
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json([{"key": i.key, "uri": i.uri, "size": i.size, "mtime": i.mtime, "etag": i.etag} for i in items])
        return
    from cloudbridge.cli._output import print_table

    rows = [["PRE" if i.key.endswith("/") else _human(i.size), _when(i.mtime), i.key] for i in items]
    print_table(["SIZE", "MODIFIED", "KEY"], rows)


@storage_app.command("du")
def du_command(
    uri: str = typer.Argument(..., help="A local path or URI."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Count objects and bytes under a prefix."""
    from cloudbridge.transfers.ops import du

    count, total = du(uri)
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json({"uri": uri, "objects": count, "bytes": total})
        return
    typer.echo(f"{count} objects, {_human(total)} ({total} bytes)  {uri}")


@storage_app.command("cp")
def cp_command(
    src: str = typer.Argument(..., help="Source path or URI."),
    dst: str = typer.Argument(..., help="Destination path or URI (ending in '/' copies into it)."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Copy every object under SRC."),
    include: list[str] = typer.Option([], "--include", help="Only keys matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip keys matching this glob (repeatable)."),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Copy one object, or a whole prefix with -r."""
    from cloudbridge.transfers.ops import cp

    result = cp(
        src, dst, recursive=recursive, include=include, exclude=exclude, progress=None if not json_output else False
    )
    if recursive:
        _finish(result, json_output)  # type: ignore[arg-type]
        return
    info: Any = result
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json({"source": src, "destination": info.uri, "size": info.size})
        return
    typer.echo(f"copied {src} -> {info.uri} ({_human(info.size)})")


@storage_app.command("rm")
def rm_command(
    uri: str = typer.Argument(..., help="Object or (with -r) prefix to delete."),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Delete every object under the prefix."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete one object, or every object under a prefix with -r."""
    from cloudbridge.transfers.ops import rm

    count = rm(uri, recursive=recursive)
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json({"uri": uri, "deleted": count})
        return
    typer.echo(f"deleted {count} object(s) under {uri}" if recursive else f"deleted {uri}")


@storage_app.command("sync")
def sync_command(
    src: str = typer.Argument(..., help="Source directory or prefix."),
    dst: str = typer.Argument(..., help="Destination directory or prefix."),
    delete: bool = typer.Option(False, "--delete", help="Delete destination objects absent at the source."),
    include: list[str] = typer.Option([], "--include", help="Only keys matching this glob (repeatable)."),
    exclude: list[str] = typer.Option([], "--exclude", help="Skip keys matching this glob (repeatable)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan; change nothing."),
    checksum: bool = typer.Option(False, "--checksum", help="Compare content sha256 instead of size+mtime/ETag."),
    workers: int = typer.Option(
        0,
        "--workers",
        help="Parallel transfers. 0 (default): 32 threads, or up to 256 requests in flight where the storage"
        " needs no thread per transfer (S3 through the AWS CRT).",
        min=0,
        max=1024,
    ),
    json_output: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Make DST match SRC: copy what is new or changed (and, with --delete, remove the rest)."""
    from cloudbridge.transfers.sync import sync

    result = sync(
        src,
        dst,
        delete=delete,
        include=include,
        exclude=exclude,
        dry_run=dry_run,
        checksum=checksum,
        workers=workers or None,
        progress=False if json_output else None,
    )
    if dry_run and not json_output:
        for item in result.plan.to_copy:
            typer.echo(f"copy    {item.key}  ({_human(item.source.size)}, {item.reason})")
        for info in result.plan.to_delete:
            typer.echo(f"delete  {info.key}")
    _finish(result, json_output)


def _finish(result: Any, json_output: bool) -> None:
    if json_output:
        from cloudbridge.cli._output import echo_json

        echo_json(result.to_dict())
    else:
        typer.echo(result.summary())
        for failure in result.failures:
            typer.secho(f"failed to {failure.op} {failure.key}: {failure.error}", fg="red", err=True)
    if not result.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add the ``storage`` command group to the root app."""
    app.add_typer(storage_app, name="storage")
