"""The live terminal dashboard of ``privaudit capture`` (rich).

:func:`render` turns a :meth:`~privaudit.capture.live.LiveAnalysis.snapshot`
into a rich renderable (pure: testable without a terminal, through
``Console(record=True)``); :class:`KeyInput` turns key presses into phase
marks (pure too); :class:`Dashboard` runs both in a thread, refreshing about
four times a second, reading keys only when stdin is a terminal.

Keys::

    1 launched   2 consent shown   3 consent given   4 logged in   5 sent prompt
    p  type a phase name (Enter marks it, Esc cancels)
    q  stop the capture (as Ctrl-C does)

More keys can name phases of their own (``--phase-key 6="logged out"``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime, timezone

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from privaudit.capture.addon import STANDARD_PHASES

REFRESH_PER_SECOND = 4
ROWS = 8

#: Keys with a fixed meaning; ``--phase-key`` may bind any other.
RESERVED_KEYS = {
    **{str(i): f"phase {name!r}" for i, name in enumerate(STANDARD_PHASES, 1)},
    "p": "type a phase", "P": "type a phase", "q": "stop", "Q": "stop",
}


def keys_help(extra: dict[str, str] | None = None) -> str:
    keys = [f"{i} {name}" for i, name in enumerate(STANDARD_PHASES, 1)]
    keys += [f"{k} {name}" for k, name in (extra or {}).items()]
    return "keys: " + "  ".join(keys) + "  p other phase  q stop"


KEYS_HELP = keys_help()


class KeyInput:
    """Key presses -> phase names. ``feed`` returns the phase to mark, or
    ``"\\x00quit"`` for q, or None; ``typing`` is the free-text phase being typed.
    ``extra`` binds more keys to phase names."""

    QUIT = "\x00quit"

    def __init__(self, extra: dict[str, str] | None = None) -> None:
        self.typing: str | None = None
        self.extra = {k: v for k, v in (extra or {}).items() if k not in RESERVED_KEYS}

    def feed(self, ch: str) -> str | None:
        if self.typing is not None:
            if ch in ("\r", "\n"):
                name, self.typing = " ".join(self.typing.split()), None
                return name or None
            if ch == "\x1b":  # Esc
                self.typing = None
            elif ch in ("\x7f", "\b"):
                self.typing = self.typing[:-1]
            elif ch.isprintable() and len(self.typing) < 80:
                self.typing += ch
            return None
        if ch in self.extra:
            return self.extra[ch]
        if ch.isdigit() and 1 <= int(ch) <= len(STANDARD_PHASES):
            return STANDARD_PHASES[int(ch) - 1]
        if ch in ("p", "P"):
            self.typing = ""
        elif ch in ("q", "Q"):
            return self.QUIT
        return None


def _elapsed(started: str | None, now: float | None = None) -> str:
    if not started:
        return "--:--:--"
    try:
        t0 = datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return "--:--:--"
    s = max(0, int((now if now is not None else time.time()) - t0))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _clock(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")


def render(
    snap: dict,
    *,
    typing: str | None = None,
    message: str | None = None,
    now: float | None = None,
    help_text: str = KEYS_HELP,
):
    """The dashboard for one snapshot, as a rich renderable."""
    phases = snap.get("phases") or []
    head = Text()
    head.append("privaudit capture ", style="bold")
    head.append(_elapsed(snap.get("started"), now))
    head.append("   phase: ")
    head.append(phases[-1]["name"] if phases else "(none marked)", style="cyan")
    if not snap.get("enabled", True):
        head.append("   live analysis off", style="yellow")
    elif not snap.get("ready", True) and not snap.get("rules_error"):
        head.append("   loading rules...", style="yellow")
    head.append(f"\nflows {snap.get('flows_recorded', 0)} recorded, {snap.get('flows_analysed', 0)} analysed")
    backlog = snap.get("queued", 0) + snap.get("deferred_pending", 0)
    if backlog:
        head.append(f" ({backlog} waiting)", style="yellow")
    head.append(f"   findings {snap.get('findings', 0)}")

    countries = Table(title="Endpoints by country", expand=True, title_justify="left")
    countries.add_column("country")
    countries.add_column("hosts", justify="right")
    countries.add_column("flows", justify="right")
    countries.add_column("personal data sent")
    for cc, c in sorted((snap.get("countries") or {}).items(), key=lambda kv: (-kv[1]["flows"], kv[0]))[:ROWS]:
        countries.add_row("unknown" if cc == "??" else cc, str(c["hosts"]), str(c["flows"]), ", ".join(c["categories"]))

    cats = Table(title="Findings by category", expand=True, title_justify="left")
    cats.add_column("category")
    cats.add_column("findings", justify="right")
    for cat, n in sorted((snap.get("categories") or {}).items(), key=lambda kv: (-kv[1], kv[0]))[:ROWS + 4]:
        cats.add_row(cat, str(n))

    own = snap.get("own_domains") or []
    parties = Table(
        title="New third parties" if own else "New domains (name the app's own with --own-domain)",
        expand=True,
        title_justify="left",
    )
    parties.add_column("time")
    parties.add_column("domain")
    parties.add_column("country")
    shown = [p for p in snap.get("parties") or [] if p.get("party") != "first"]
    for p in shown[-ROWS:]:
        parties.add_row(_clock(p["time"]), p["domain"], p.get("country") or "?")

    recent = Table(title="Latest findings", expand=True, title_justify="left")
    recent.add_column("time")
    recent.add_column("host")
    recent.add_column("category")
    recent.add_column("severity")
    for r in (snap.get("recent") or [])[-ROWS:]:
        style = "red" if r["severity"] in ("high", "critical") else None
        recent.add_row(_clock(r["time"]), r["host"], r["category"], Text(r["severity"], style=style or ""))

    errors = Text()
    if snap.get("write_errors"):
        errors.append(
            f"NOT RECORDED: {snap['write_errors']} flows -- {snap.get('last_write_error') or ''}\n", style="bold red"
        )
    if snap.get("analysis_errors"):
        errors.append(f"analysis errors: {snap['analysis_errors']} flows (counted in the report)\n", style="red")
    if snap.get("rules_error"):
        errors.append(f"live analysis off: {snap['rules_error']}\n", style="red")
    for e in snap.get("errors") or []:
        errors.append(f"  {e}\n", style="red")

    grid = Table.grid(expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(countries, cats)
    grid.add_row(parties, recent)

    foot = Text()
    if typing is not None:
        foot.append("phase name: ", style="bold")
        foot.append(typing + "_")
        foot.append("   (Enter marks it, Esc cancels)", style="dim")
    else:
        foot.append(help_text, style="dim")
    if message:
        foot.append("\n" + message, style="green")
    parts = [head, grid]
    if errors:
        parts.append(errors)
    parts.append(foot)
    return Group(*parts)


def render_text(snap: dict, width: int = 120, **kw) -> str:
    """:func:`render` as plain text (tests, logs)."""
    import io

    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(render(snap, **kw))
    return console.export_text()


@contextlib.contextmanager
def _cbreak(stream):
    """Single key presses without Enter (Ctrl-C still interrupts)."""
    import termios
    import tty

    fd = stream.fileno()
    old = termios.tcgetattr(fd)
    try:
        tty.setcbreak(fd, termios.TCSANOW)  # not TCSAFLUSH: keep keys typed already
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


class Dashboard:
    """Runs the live view in a thread until :meth:`stop`.

    ``snapshot`` gives the counters (``LiveAnalysis.snapshot``), ``mark``
    marks a phase (``CaptureReady.phase``), ``quit`` stops the capture.
    Keys are read only when ``stdin`` is a terminal.
    """

    def __init__(
        self,
        snapshot: Callable[[], dict],
        mark: Callable[[str], None],
        *,
        quit: Callable[[], None] | None = None,
        console: Console | None = None,
        stdin=None,
        extra_keys: dict[str, str] | None = None,
    ) -> None:
        self.snapshot = snapshot
        self.mark = mark
        self.quit = quit
        self.console = console or Console(stderr=True)
        self.stdin = stdin if stdin is not None else sys.stdin
        self.keys = KeyInput(extra_keys)
        self.help = keys_help(self.keys.extra)
        self.message: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> "Dashboard":
        self._thread = threading.Thread(target=self._run, name="privaudit-dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def handle(self, ch: str) -> None:
        action = self.keys.feed(ch)
        if action == KeyInput.QUIT:
            if self.quit is not None:
                self.quit()
        elif action:
            try:
                self.mark(action)
                self.message = f"marked phase {action!r} at {datetime.now(timezone.utc):%H:%M:%S} UTC"
            except Exception as e:
                self.message = f"could not mark the phase: {e}"

    def _frame(self):
        try:
            snap = self.snapshot()
        except Exception as e:  # pragma: no cover - show something rather than die
            snap = {"errors": [f"dashboard: {e}"]}
        return render(snap, typing=self.keys.typing, message=self.message, help_text=self.help)

    def _run(self) -> None:
        from rich.live import Live

        interactive = _is_tty(self.stdin)
        # keys first: a key pressed as soon as the dashboard shows is not lost
        with _cbreak(self.stdin) if interactive else contextlib.nullcontext():
            with Live(self._frame(), console=self.console, refresh_per_second=REFRESH_PER_SECOND, transient=False) as live:
                while not self._stop.is_set():
                    if interactive:
                        for ch in _read_keys(self.stdin, 1 / REFRESH_PER_SECOND):
                            self.handle(ch)
                    else:
                        self._stop.wait(1 / REFRESH_PER_SECOND)
                    live.update(self._frame())
                live.update(self._frame())


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _read_keys(stream, timeout: float) -> str:
    import select

    fd = stream.fileno()
    ready, _, _ = select.select([fd], [], [], timeout)
    if not ready:
        return ""
    data = os.read(fd, 64)
    return data.decode("utf-8", "replace")
