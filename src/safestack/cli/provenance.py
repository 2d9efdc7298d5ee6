"""``safestack provenance``: signing material, and signing, verifying and looking up images.

The commands use the gateway's configuration (``--config``: its ``provenance:`` section and its
database) so that an image signed here is registered exactly as the gateway registers its own,
and a lookup here sees everything the gateway released.

Exit codes: 0 (valid manifest / made by us / done), 1 (``verify``: not valid; ``lookup``: not
made by us — like ``grep``, "no" is an answer, not an error), 2 (the input or configuration
cannot be used).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from safestack.cli._common import ExitCode, console, emit_json, err_console, user_errors
from safestack.errors import InputError

if TYPE_CHECKING:
    from safestack.provenance import LookupResult, ManifestReport, Provenance, ProvenanceConfig

__all__ = ["app"]

app = typer.Typer(
    help="Provenance: C2PA manifests, invisible watermarks, and the registry of released images.",
    no_args_is_help=True,
)

AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help="Gateway YAML file: its provenance section (signing material, watermark) and its "
        "database. Default: the embedded defaults (development credentials, dwtDctSvd).",
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="The registry's database (overrides the config's). Default: $SAFESTACK_DATABASE_URL, "
        "else SQLite in the user's data directory (as `safestack serve`).",
    ),
]
ManifestOption = Annotated[
    Path | None,
    typer.Option(
        "--manifest",
        help="A sidecar manifest (.c2pa). Default: IMAGE.c2pa beside the image, if it exists.",
    ),
]
ImageArg = Annotated[Path, typer.Argument(help="Image file (PNG, JPEG, WebP, GIF, BMP, TIFF).")]


def _settings(config: Path | None) -> tuple[ProvenanceConfig, str | None]:
    """The provenance section and database URL of a gateway file (or the defaults)."""
    from safestack.gateway import GatewayConfig, load_gateway_config

    gateway = load_gateway_config(config) if config else GatewayConfig()
    return gateway.provenance, gateway.database_url


@contextlib.contextmanager
def _provenance(config: Path | None, database_url: str | None) -> Iterator[Provenance]:
    from safestack.provenance import Provenance
    from safestack.store import Store

    settings, configured_url = _settings(config)
    with Store(database_url or configured_url) as store:
        store.migrate()
        yield Provenance.from_config(settings, store)


def _read(path: Path, what: str = "image") -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the {what} {path}: {exc.strerror}") from None


def _sidecar(image: Path, manifest: Path | None) -> bytes | None:
    if manifest is not None:
        return _read(manifest, "manifest")
    beside = image.with_name(image.name + ".c2pa")
    return beside.read_bytes() if beside.is_file() else None


@app.command("init")
def init_command(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir",
            help="Where to write. Default: $SAFESTACK_PROVENANCE_DIR, else 'provenance' in the "
            "user's data directory (where the gateway looks when no certificate is configured).",
        ),
    ] = None,
    days: Annotated[int, typer.Option(min=1, help="Validity of the certificates.")] = 365,
    force: Annotated[bool, typer.Option("--force", help="Replace existing credentials.")] = False,
    as_json: AsJson = False,
) -> None:
    """Create development signing credentials: a CA and a C2PA signing certificate under it.

    They are NOT trusted by public validators: images signed with them read as "untrusted"
    except where the development CA is loaded as a trust anchor (this operator's own verify and
    lookup). Existing credentials are kept unless --force. Exit 0, or 2 on error.
    """
    with user_errors():
        from safestack.provenance import (
            SigningCredentials,
            create_development_credentials,
            provenance_directory,
        )

        target = directory or provenance_directory()
        existed = (target / "signer-chain.pem").exists()
        if force or not existed:
            create_development_credentials(target, days=days, overwrite=force)
        credentials = SigningCredentials.development_default(target)
    record = {
        "directory": str(target),
        "created": force or not existed,
        "certificate": str(target / "signer-chain.pem"),
        "private_key": str(target / "signer-key.pem"),
        "ca_certificate": str(target / "dev-ca.pem"),
        "signer": credentials.describe(),
        "trusted_by_public_validators": False,
    }
    if as_json:
        emit_json(record)
        return
    verb = "created" if record["created"] else "already present (--force replaces them)"
    console.print(f"development credentials {verb} in {escape(str(target))}")
    console.print(f"  signer   {escape(credentials.subject)}")
    console.print(f"  valid to {credentials.not_after:%Y-%m-%d}")
    console.print(f"  CA       {escape(str(record['ca_certificate']))}")
    err_console.print(
        "[yellow]warning:[/] development certificates are not trusted by public C2PA "
        "validators; configure a certificate from a trusted CA for production "
        "(provenance.certificate / private_key, or provenance.signer for an HSM / KMS)."
    )


@app.command("sign")
def sign_command(
    source: Annotated[Path, typer.Argument(help="The image to sign.")],
    output: Annotated[Path, typer.Argument(help="Where to write it (same format as SOURCE).")],
    model: Annotated[str | None, typer.Option(help="The model that made the image.")] = None,
    prompt: Annotated[
        str | None, typer.Option(help="Its prompt (kept as a SHA-256 unless configured).")
    ] = None,
    parent: Annotated[
        Path | None,
        typer.Option(help="For an edit: the image it was made from (becomes an ingredient)."),
    ] = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Watermark, sign (C2PA) and register an image, exactly as the gateway does.

    Formats C2PA cannot embed into (BMP) get a sidecar manifest, OUTPUT.c2pa. Nothing is written
    unless the image was registered. Exit 0, or 2 on error.
    """
    with user_errors():
        data = _read(source)
        parent_data = None if parent is None else _read(parent, "parent image")
        with _provenance(config, database_url) as provenance:
            stamped = provenance.stamp(data, model=model, prompt=prompt, parent=parent_data)
            signer = provenance.signer.credentials.describe()
        sidecar_path = output.with_name(output.name + ".c2pa")
        try:
            output.write_bytes(stamped.data)
            if stamped.sidecar_manifest is not None:
                sidecar_path.write_bytes(stamped.sidecar_manifest)
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror}") from None
    record = stamped.record
    result = {
        "record_id": record.id,
        "output": str(output),
        "manifest": "embedded" if record.manifest_embedded else "sidecar",
        "sidecar": None if stamped.sidecar_manifest is None else str(sidecar_path),
        "manifest_label": record.manifest_label,
        "watermark": record.watermark_method,
        "sha256": record.sha256,
        "pdq": record.pdq,
        "action": record.action,
        "media_type": record.media_type,
        "signer": signer,
    }
    if as_json:
        emit_json(result)
        return
    console.print(f"signed {escape(str(output))}: record {record.id}")
    console.print(f"  manifest  {result['manifest']} ({record.manifest_label})")
    if result["sidecar"]:
        console.print(f"  sidecar   {escape(str(result['sidecar']))}")
    console.print(f"  watermark {record.watermark_method or 'none (image too small or animated)'}")
    if signer["development"]:
        err_console.print("[yellow]note:[/] signed with development credentials (untrusted).")


@app.command("verify")
def verify_command(
    image: ImageArg,
    manifest: ManifestOption = None,
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            help="A PEM CA certificate to trust (repeatable). Default: this operator's trust "
            "anchors (the configured ones; the development CA with development credentials).",
        ),
    ] = None,
    public: Annotated[
        bool,
        typer.Option(
            "--public", help="Trust no anchor of this operator: what a public validator sees."
        ),
    ] = False,
    config: ConfigOption = None,
    as_json: AsJson = False,
) -> None:
    """Read an image's C2PA manifest back and say what it proves.

    States: valid (signed, unchanged, trusted signer), untrusted (signed and unchanged, signer
    not trusted here), invalid (changed after signing, or corrupted), none (no manifest).
    Exit 0 for valid, 1 otherwise, 2 when the file cannot be read.
    """
    with user_errors():
        from safestack.provenance import read_manifest

        data = _read(image)
        sidecar = _sidecar(image, manifest)
        anchors = b"" if public else _trust_anchors(trust, config)
        report = read_manifest(data, None, sidecar=sidecar, trust_anchors_pem=anchors)
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        _print_report(report)
    raise typer.Exit(ExitCode.OK if report.state == "valid" else ExitCode.FLAGGED)


def _trust_anchors(trust: list[Path] | None, config: Path | None) -> bytes:
    """PEM anchors: the given files, else those of the configured credentials.

    Without a configured certificate, the development CA counts only if it exists: verifying
    never creates credentials.
    """
    if trust:
        return b"".join(_read(path, "trust anchor") for path in trust)
    from safestack.provenance import provenance_directory

    settings, _ = _settings(config)
    anchors = b"".join(_read(Path(path), "trust anchor") for path in settings.trust_anchors)
    if settings.certificate is None:
        development_ca = provenance_directory() / "dev-ca.pem"
        if development_ca.is_file():
            anchors += development_ca.read_bytes()
    return anchors


def _print_report(report: ManifestReport) -> None:
    colour = {"valid": "green", "untrusted": "yellow", "invalid": "red", "none": "dim"}
    console.print(f"[bold {colour[report.state]}]{report.state}[/]: {escape(report.explanation)}")
    if report.label:
        where = "embedded" if report.embedded else "sidecar"
        console.print(f"  manifest   {escape(report.label)} ({where})")
    if report.signer:
        console.print(
            f"  signer     {escape(report.signer.get('common_name', '?'))} "
            f"({escape(report.signer.get('issuer', '?'))})"
        )
    if report.actions:
        console.print(f"  actions    {', '.join(report.actions)}")
    if report.digital_source_type:
        console.print(f"  source     {escape(report.digital_source_type.rsplit('/', 1)[-1])}")
    if report.record_id:
        console.print(f"  record     {report.record_id}")
    if report.failures:
        console.print(f"  failures   {escape(', '.join(report.failures))}")
    if report.error:
        console.print(f"  error      {escape(report.error)}")


@app.command("lookup")
def lookup_command(
    image: ImageArg,
    manifest: ManifestOption = None,
    config: ConfigOption = None,
    database_url: DatabaseUrl = None,
    as_json: AsJson = False,
) -> None:
    """Did we make this image? Checked by exact hash, manifest, watermark and PDQ hash.

    Finds an image after its metadata was stripped, or it was re-encoded, resized or rotated;
    after a crop only with the rivaGan watermark (BENCHMARKS.md has the measured rates).
    Exit 0 if made by us, 1 if not, 2 on error.
    """
    with user_errors():
        data = _read(image)
        sidecar = _sidecar(image, manifest)
        with _provenance(config, database_url) as provenance:
            result = provenance.lookup(data, sidecar=sidecar)
    if as_json:
        emit_json(result.model_dump(mode="json"))
    else:
        _print_lookup(result)
    raise typer.Exit(ExitCode.OK if result.made_by_us else ExitCode.FLAGGED)


def _print_lookup(result: LookupResult) -> None:
    if result.made_by_us:
        assert result.record is not None
        console.print(
            f"[bold green]made by us[/]: record {result.record_id}, by {result.signal} "
            f"(confidence {result.confidence:.3f})"
        )
        console.print(
            f"  released {result.record.created_at:%Y-%m-%d %H:%M} UTC, model "
            f"{escape(result.record.model or '?')}, {result.record.action}"
        )
    else:
        console.print("[bold]not made by us[/]: no signal matched")
    table = Table("signal", "matched", "confidence", "detail")
    for item in result.evidence:
        table.add_row(
            item.signal,
            "yes" if item.matched else "no",
            f"{item.confidence:.3f}" if item.matched else "",
            escape(item.detail),
        )
    console.print(table)


@app.command("status")
def status_command(
    config: ConfigOption = None, database_url: DatabaseUrl = None, as_json: AsJson = False
) -> None:
    """Who signs (certificate, expiry, development or not), the watermark, the registry size.

    Loads and checks the signing material as `safestack serve` does at start-up. Exit 0, or 2
    when the material cannot sign.
    """
    with user_errors(), _provenance(config, database_url) as provenance:
        record: dict[str, Any] = {
            "signer": provenance.signer.credentials.describe(),
            "watermark": None if provenance.watermarker is None else provenance.watermarker.method,
            "registry": {
                "database": provenance.registry.store.url,
                "records": provenance.registry.store.count_provenance(),
            },
        }
    if as_json:
        emit_json(record)
        return
    signer = record["signer"]
    console.print(f"signer    {escape(str(signer['subject']))}")
    console.print(f"valid to  {signer['not_after']}")
    if signer["development"]:
        console.print(
            "          [yellow]development credentials: untrusted by public validators[/]"
        )
    console.print(f"watermark {record['watermark'] or 'none'}")
    registry = record["registry"]
    console.print(f"registry  {registry['records']:,} images in {escape(registry['database'])}")
