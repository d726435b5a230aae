"""The ``venue`` command line."""
from __future__ import annotations

import errno
import logging
import os
import signal
import sys
import threading

import click

from venue.core import Venue
from venue.errors import VenueError

DEFAULT_DATA_DIR = os.path.join(os.path.expanduser("~"), ".venue", "demo")


def data_dir_option(f):
    return click.option(
        "--data-dir", envvar="VENUE_DATA_DIR", default=DEFAULT_DATA_DIR, show_default=True,
        type=click.Path(file_okay=False), help="The venue's data directory (or VENUE_DATA_DIR).",
    )(f)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-vv for debug).")
def cli(verbose: int) -> None:
    """Run and operate the venue."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.command()
@data_dir_option
@click.option("--fix-ports", default="9878,9879,9880", show_default=True,
              help="Order entry, drop copy and market data ports (0 = any free port).")
@click.option("--redis", "redis_url", default="", metavar="URL",
              help="Also publish market data to Redis (e.g. redis://127.0.0.1:6379/0); default: in-process only.")
@click.option("--redis-prefix", default="md", show_default=True, help="Key prefix of the Redis publication.")
def demo(data_dir: str, fix_ports: str, redis_url: str, redis_prefix: str) -> None:
    """Start the demo venue on its embedded defaults (resumes DIR if it holds one)."""
    from cli.demo import CONNECT_HELP, demo_commands
    from cli.output import Failure, one_line
    from sessions.server import FixConfig, FixServer

    from cli.runtime import start_redis_publisher, start_venue

    # the core, its SQL store, its market data and the control endpoint
    running = start_venue(data_dir, with_market_data=True)
    v = running.venue
    if running.report.last_seq == 0:
        for cmd in demo_commands():
            v.execute(cmd)
        click.echo(f"seeded a new demo venue in {data_dir}")
    else:
        click.echo(f"resumed the demo venue in {data_dir} at sequence {running.report.last_seq}")
    fix_server = None
    try:
        ports = [int(p) for p in fix_ports.split(",")]
        if len(ports) != 3:
            raise click.BadParameter("three ports: order entry, drop copy, market data", param_hint="--fix-ports")
        fix_server = FixServer(v, FixConfig(data_dir=data_dir, ports=dict(zip(("order_entry", "drop_copy", "market_data"), ports))),
                               store=running.store, market_data=running.market_data)
        try:
            fix_server.start()
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            raise Failure(f"a FIX port of {fix_ports} is already in use (is another venue running?); "
                          f"choose others with --fix-ports, or 0,0,0 for any free ports") from None
        running.front_ends.append(fix_server)
        fix, fix_server = fix_server, None  # running.stop() stops it from here on
        if redis_url:
            start_redis_publisher(running, redis_url, redis_prefix)
            click.echo(f"market data published to {redis_url} (prefix {redis_prefix})")
        from cli.control import register_status

        register_status("fix", lambda _v: fix.status())
        # custody: the embedded chain with its faucet, a SoftHSM2 token under the data directory
        from cli.custody import DEMO_HELP, describe
        from custody.demo import start_demo_custody
        from custody.errors import CustodyError

        try:
            custody = start_demo_custody(v)
        except CustodyError as e:
            raise Failure(f"custody could not start: {one_line(e)}") from None
        running.front_ends.append(custody)  # stopped first: before the FIX server and the venue
    except BaseException:
        if fix_server is not None:  # started in part (a port in use)
            try:
                fix_server.stop()
            except Exception:
                logging.getLogger("venue.demo").exception("stopping the FIX server failed")
        running.stop()
        raise
    click.echo(CONNECT_HELP.format(host=fix.cfg.host, data_dir=data_dir, **fix.ports()))
    click.echo(describe(custody))
    click.echo(DEMO_HELP)
    click.echo(f"Control: 'venue status', 'venue halt BTC-USD', ... (operator credential in {data_dir}/operator.secret)",
               err=False)
    _wait_for_signal()
    running.stop()


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()


def _add_operator_commands() -> None:
    from cli import custody, ops

    ops.add_commands(cli)
    custody.add_commands(cli)  # also registers the custody.* control handlers


_add_operator_commands()


def main() -> None:
    try:
        cli(standalone_mode=True)
    except VenueError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(1)
