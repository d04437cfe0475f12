"""``cloudbridge dashboard``: start the local web dashboard (see :mod:`cloudbridge.dashboard`)."""

from __future__ import annotations

import errno
import socket

import typer

__all__ = ["bind", "register"]

INSTALL_HINT = "pip install 'cloudbridge-ai[dashboard]'"
DEFAULT_PORT = 8765


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port``; a port in use is one line naming it, suggesting ``--port 0``."""
    from cloudbridge.errors import UserError

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as exc:
        sock.close()
        if exc.errno in (errno.EADDRINUSE, errno.EACCES):
            why = "is in use" if exc.errno == errno.EADDRINUSE else "is not allowed"
            raise UserError(f"port {port} on 127.0.0.1 {why}; choose another with --port, "
                            "or --port 0 for any free port") from None
        raise UserError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def dashboard_command(
    port: int = typer.Option(DEFAULT_PORT, "--port", help="Port on 127.0.0.1 (0: any free port)."),
    open_browser: bool = typer.Option(False, "--open", help="Open the dashboard in the default browser."),
) -> None:
    """Serve the web dashboard on 127.0.0.1: jobs of every provider, logs, charts, endpoints, GPUs, spend.

    The URL printed carries a random token; requests without it get 403. Ctrl-C stops the server.
    """
    import secrets

    from cloudbridge.errors import UserError

    try:
        import uvicorn

        from cloudbridge.dashboard.app import create_app
    except ImportError as exc:
        raise UserError(f"the dashboard needs {exc.name}; install it with: {INSTALL_HINT}") from None
    if not 0 <= port <= 65535:
        raise UserError(f"--port {port}: choose 0 to 65535")
    sock = bind(port)
    from cloudbridge.dashboard.views import warm_up

    warm_up()
    token = secrets.token_urlsafe(24)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/?token={token}"
    typer.echo(f"cloudbridge dashboard: {url}", err=False)
    typer.echo("(Ctrl-C stops it)", err=True)
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    config = uvicorn.Config(create_app(token), log_level="warning", lifespan="off", timeout_graceful_shutdown=2)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()


def register(app: typer.Typer) -> None:
    """Add ``dashboard`` to ``app``."""
    app.command("dashboard", rich_help_panel="Jobs")(dashboard_command)
