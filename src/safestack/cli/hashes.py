"""``safestack hashes``: hash an image, import known-bad hash lists into banks, match, manage banks.

The commands work on the gateway's own database (``--database-url``, else
``$SAFESTACK_DATABASE_URL``, else the default SQLite file), so a bank imported here is what a
running gateway matches against within seconds — no restart, no export step.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from safestack.cli._common import ExitCode, console, emit_json, err_console, user_errors
from safestack.errors import InputError

if TYPE_CHECKING:
    from safestack.hashing import ImageHashes, TypeChoice
    from safestack.store import HashBank, NewHashEntry, Store

__all__ = ["app"]

app = typer.Typer(
    help="Known-bad media: hash images, import hash lists into banks, match, manage banks.",
    no_args_is_help=True,
)

_HASH_TYPES = ("sha256", "md5", "pdq")
#: Redraw the import counter every this many entries: a per-entry redraw would cost more than
#: the insert itself on files of millions of hashes.
_PROGRESS_EVERY = 1_000

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="SQLAlchemy URL of the gateway's database, e.g. postgresql://user@host/db. Default: "
        "$SAFESTACK_DATABASE_URL, else SQLite in the user's data directory (as `safestack serve`).",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
BankArg = Annotated[str, typer.Argument(help="Bank name or id.")]
ImageArg = Annotated[Path, typer.Argument(help="Image file (PNG, JPEG, WebP, GIF).")]


@contextlib.contextmanager
def _open_store(database_url: str | None) -> Iterator[Store]:
    """The store, migrated (a fresh database works at once), closed when the command ends."""
    from safestack.store import Store

    with Store(database_url) as store:
        store.migrate()
        yield store


def _actor() -> str:
    """Who the audit log names for changes made here: the operating-system user."""
    try:
        return f"cli ({getpass.getuser()})"
    except (KeyError, OSError):  # no user name in a bare container
        return "cli"


def _hash_file(image: Path) -> ImageHashes:
    """Hashes of an image file; an unreadable or undecodable image raises (never skipped)."""
    from safestack.hashing import hash_bytes

    try:
        data = image.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {image}: {exc.strerror}") from None
    return hash_bytes(data)


def _bank_record(bank: HashBank) -> dict[str, Any]:
    return {
        "id": bank.id,
        "name": bank.name,
        "description": bank.description,
        "enabled": bank.enabled,
        "actions": _actions(bank),
        "counts": {t: bank.counts.get(t, 0) for t in _HASH_TYPES},
    }


def _actions(bank: HashBank) -> list[str]:
    flags = (bank.action_reject, bank.action_report, bank.action_ban)
    return [name for name, on in zip(("reject", "report", "ban"), flags, strict=True) if on]


def _print_bank(bank: HashBank) -> None:
    state = "[green]enabled[/]" if bank.enabled else "[yellow]disabled[/]"
    counts = ", ".join(f"{t} {bank.counts.get(t, 0):,}" for t in _HASH_TYPES)
    actions = ", ".join(_actions(bank)) or "none"
    console.print(
        f"{escape(bank.name)} ({bank.id}): {state}; actions: {actions}; {counts}", soft_wrap=True
    )


@app.command("hash")
def hash_command(image: ImageArg, as_json: AsJson = False) -> None:
    """SHA-256 and MD5 of the file's bytes, PDQ hash and quality of its pixels (every frame).

    Exit 0, or 2 when the file cannot be read or decoded.
    """
    with user_errors():
        hashes = _hash_file(image)
    frames = [{"pdq": pdq, "quality": quality} for pdq, quality in hashes.frame_pdq]
    if as_json:
        emit_json(
            {
                "sha256": hashes.sha256,
                "md5": hashes.md5,
                "pdq": hashes.pdq,
                "quality": hashes.quality,
                "frames": frames,
            }
        )
        return
    console.print(f"sha256   {hashes.sha256}")
    console.print(f"md5      {hashes.md5}")
    console.print(f"pdq      {hashes.pdq}")
    console.print(f"quality  {hashes.quality}")
    if len(frames) > 1:
        for number, frame in enumerate(frames, 1):
            console.print(f"  frame {number}: {frame['pdq']} quality {frame['quality']}")


def _counted(entries: Iterable[NewHashEntry], progress: Progress | None) -> Iterator[NewHashEntry]:
    """``entries`` unchanged, advancing the spinner's counter as they stream into the store."""
    if progress is None:
        yield from entries
        return
    task = progress.add_task("importing", total=None)
    seen = 0
    for seen, entry in enumerate(entries, 1):
        if seen % _PROGRESS_EVERY == 0:
            progress.update(task, completed=seen)
        yield entry
    progress.update(task, completed=seen)


@app.command("import")
def import_command(
    bank: Annotated[str, typer.Argument(help="Bank name or id; a new name creates the bank.")],
    file: Annotated[
        Path, typer.Argument(help="Hash list: plain, CSV, JSON lines or ThreatExchange PDQ text.")
    ],
    hash_type: Annotated[
        str,
        typer.Option(
            "--type",
            help="auto: from the file, else by length (32 hex: md5; 64 hex: both sha256 and "
            "pdq). sha256, md5 or pdq: every hash in the file is of that type.",
        ),
    ] = "auto",
    description: Annotated[
        str | None, typer.Option(help="Description of a bank this import creates.")
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Import the good lines and list the bad ones."),
    ] = False,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Add a file's hashes to a bank, creating the bank (enabled; reject, report, ban) if new.

    Formats: one hash per line (optionally `pdq <hex>` / `md5,<hex>`), ThreatExchange PDQ text
    (`<hex>,<quality>`), CSV with a `hash` column (other columns kept as metadata), JSON lines.
    Hashes already in the bank are counted, not duplicated. A bad line anywhere stores nothing
    (unless --skip-invalid) and lists the bad lines. Exit 0, or 2 on error.
    """
    with user_errors():
        from safestack.hashing import read_hash_file

        if hash_type not in ("auto", *_HASH_TYPES):
            raise InputError(f"unknown --type {hash_type!r}; allowed: auto, sha256, md5, pdq")
        choice: TypeChoice = hash_type  # type: ignore[assignment]  # checked just above
        # Bad lines are collected here rather than by the reader's skip_invalid, to list them.
        entries = read_hash_file(file, hash_type=choice)
        skipped: list[str] = []
        if skip_invalid:
            entries = _skipping(entries, skipped)
        with _open_store(database_url) as store:
            if as_json:
                result = store.import_hashes(bank, entries, description=description, actor=_actor())
            else:
                columns = (
                    SpinnerColumn(),
                    TextColumn("{task.description} {task.completed:,} hashes"),
                    TimeElapsedColumn(),
                )
                with Progress(*columns, console=err_console, transient=True) as progress:
                    result = store.import_hashes(
                        bank,
                        _counted(entries, progress),
                        description=description,
                        actor=_actor(),
                    )
    for problem in skipped:
        err_console.print(f"[yellow]skipped[/] {escape(problem)}", soft_wrap=True)
    added = {t: result.added.get(t, 0) for t in _HASH_TYPES}
    present = {t: result.already_present.get(t, 0) for t in _HASH_TYPES}
    if as_json:
        emit_json(
            {
                "bank": result.bank.name,
                "bank_id": result.bank.id,
                "created": result.created_bank,
                "added": added,
                "already_present": present,
            }
        )
        return
    verb = "created" if result.created_bank else "extended"
    console.print(f"bank {escape(result.bank.name)} ({result.bank.id}) {verb}")
    table = Table(show_header=True, box=None)
    for column in ("type", "added", "already present", "in bank"):
        table.add_column(column, justify="left" if column == "type" else "right")
    for t in _HASH_TYPES:
        if added[t] or present[t]:
            table.add_row(
                t, f"{added[t]:,}", f"{present[t]:,}", f"{result.bank.counts.get(t, 0):,}"
            )
    console.print(table)


def _skipping(entries: Iterator[NewHashEntry], skipped: list[str]) -> Iterator[NewHashEntry]:
    """Every good entry; the bad lines' problems go to ``skipped`` instead of failing.

    The reader raises its :class:`~safestack.hashing.HashFileError` only after the last entry,
    so catching it here imports exactly what ``skip_invalid`` would, and can still say which
    lines were left out.
    """
    from safestack.hashing import HashFileError

    try:
        yield from entries
    except HashFileError as exc:
        skipped.extend(exc.problems)
        if exc.total > len(exc.problems):
            skipped.append(f"(and {exc.total - len(exc.problems)} more)")


@app.command("list")
def list_command(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Every bank: id, name, enabled, actions and entries per hash type. Exit 0, or 2 on error."""
    with user_errors(), _open_store(database_url) as store:
        banks = store.list_hash_banks()
    if as_json:
        emit_json({"banks": [_bank_record(bank) for bank in banks]})
        return
    if not banks:
        console.print("no hash banks (add one with `safestack hashes import BANK FILE`)")
        return
    table = Table(title="hash banks")
    for column in ("name", "id", "enabled", "actions", *_HASH_TYPES):
        table.add_column(column, justify="right" if column in _HASH_TYPES else "left")
    for bank in banks:
        table.add_row(
            escape(bank.name),
            bank.id,
            "yes" if bank.enabled else "no",
            ", ".join(_actions(bank)) or "none",
            *(f"{bank.counts.get(t, 0):,}" for t in _HASH_TYPES),
        )
    console.print(table)


@app.command("match")
def match_command(
    image: ImageArg,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
    fail_on_match: Annotated[
        bool,
        typer.Option(
            "--fail-on-match", help="Exit 1 on a match (for scripts that gate on the answer)."
        ),
    ] = False,
) -> None:
    """Match an image against the enabled banks: exact SHA-256 / MD5, then PDQ within 31.

    Exit 0 with the answer (matched or not; with --fail-on-match a match exits 1), 2 on an
    error — an image that cannot be decoded is an error, never "no match".
    """
    with user_errors():
        from safestack.hashing import HashMatcher

        hashes = _hash_file(image)
        with _open_store(database_url) as store:
            found = HashMatcher(store).match(hashes)
    if as_json:
        emit_json(
            {
                "matched": found is not None,
                "bank": found.bank if found else None,
                "hash_type": found.hash_type if found else None,
                "distance": found.distance if found else None,
            }
        )
    elif found is None:
        console.print(f"{escape(str(image))}: [green]no match[/]")
    else:
        how = "exact" if found.distance is None else f"distance {found.distance}"
        console.print(
            f"{escape(str(image))}: [bold red]MATCH[/] in bank {escape(found.bank)} by "
            f"{found.hash_type} ({how}); actions: {', '.join(sorted(found.actions)) or 'none'}",
            soft_wrap=True,
        )
    if found is not None and fail_on_match:
        raise typer.Exit(ExitCode.FLAGGED)


def _set_enabled(bank: str, enabled: bool, database_url: str | None, as_json: bool) -> None:
    with user_errors(), _open_store(database_url) as store:
        found = store.get_hash_bank(bank)
        changed = store.set_hash_bank_enabled(found.id, enabled, actor=_actor())
    if as_json:
        emit_json(_bank_record(changed))
    else:
        _print_bank(changed)


@app.command("enable")
def enable(bank: BankArg, database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Use the bank for matching again (gateways pick it up within seconds)."""
    _set_enabled(bank, True, database_url, as_json)


@app.command("disable")
def disable(bank: BankArg, database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Stop matching against the bank; its entries are kept."""
    _set_enabled(bank, False, database_url, as_json)


@app.command("actions")
def actions(
    bank: BankArg,
    reject: Annotated[
        bool | None, typer.Option("--reject/--no-reject", help="Refuse the request.")
    ] = None,
    report: Annotated[
        bool | None, typer.Option("--report/--no-report", help="File (and deliver) a report.")
    ] = None,
    ban: Annotated[bool | None, typer.Option("--ban/--no-ban", help="Ban the account.")] = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Show or change what a match against the bank does; flags not given stay as they are."""
    with user_errors(), _open_store(database_url) as store:
        found = store.get_hash_bank(bank)
        wanted = {"reject": reject, "report": report, "ban": ban}
        if all(value is None for value in wanted.values()):
            changed = found
        else:
            current = set(_actions(found))
            chosen = [
                name
                for name in ("reject", "report", "ban")
                if (name in current if wanted[name] is None else wanted[name])
            ]
            changed = store.set_hash_bank_actions(found.id, chosen, actor=_actor())
    if as_json:
        emit_json(_bank_record(changed))
    else:
        _print_bank(changed)
