"""``nav-crm-ops listen``: the wake-up receiver that runs beside ``jobs run --loop``.

Why a module of its own: the main CLI is at its size limit; like ``cli_reconcile.py`` this
command registers itself with the main group (:func:`nav_crm_ops.cli._register_groups`).
The runtime is :mod:`nav_crm_ops.jobs.listen`. Exit codes: 0 stopped by Ctrl+C (or SIGTERM),
2 bad input (a --public-url that is not an absolute http(s) URL, a bad workspace).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from urllib.parse import urlsplit

import click

from .cli_options import workspace_option

__all__ = ["listen_command"]


@click.command("listen")
@click.option("--public-url", required=True,
              help="The URL Business Central calls (notificationUrl): this receiver as the "
                   "internet sees it, e.g. https://sync.example.com/bc-webhook behind a "
                   "reverse proxy.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address the receiver listens on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8780, show_default=True,
              help="Port the receiver listens on (0: any free port, printed at start).")
@click.option("--poll", "poll_s", type=click.FloatRange(min=1), default=30.0,
              show_default=True, help="Seconds between Dataverse change-tracking polls.")
@workspace_option
def listen_command(public_url: str, host: str, port: int, poll_s: float,
                   workspace_path: Path) -> int:
    """Wake jobs when their tables change: Business Central webhooks (subscribed on start,
    renewed before expiry, clientState checked) and Dataverse change tracking (polled every
    --poll seconds). A woken job runs at once in `jobs run --loop`. Writes nothing to the
    services except its own subscriptions; a notification only wakes a job."""
    from .config import load_config
    from .jobs.listen import Listener, ListenOptions

    parts = urlsplit(public_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise click.BadParameter("give the absolute http(s) URL Business Central can reach, "
                                 "e.g. https://sync.example.com/bc-webhook",
                                 param_hint="--public-url")
    config = load_config(workspace_path)
    options = ListenOptions(public_url=public_url, host=host, port=port, poll_s=poll_s)
    stop = threading.Event()

    def on_term(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    listener = Listener(config, options, echo=click.echo)
    try:
        listener.start()
        address = listener.address
        click.echo(f"Listening on http://{address[0]}:{address[1]} for {public_url}; "
                   f"polling Dataverse every {poll_s:g} s. Ctrl+C stops.")
        listener.run(stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        listener.close()
    return 0
