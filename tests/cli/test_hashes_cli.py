"""`safestack hashes`: hash, import, list, match, enable, disable, actions; on a SQLite file.

The JSON shapes of ``hash`` and ``match`` are a contract for scripts; their keys are pinned here.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter
from typer.testing import CliRunner

from safestack.cli import app
from safestack.store import Store


def _image(seed: int) -> Image.Image:
    """A smooth colour field with shapes: structure PDQ keeps through a JPEG re-encode."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:192, 0:192] / 192
    field = sum(
        np.sin(2 * np.pi * (fx * x + fy * y) + p)[..., None] * rng.uniform(20, 50, 3)
        for fx, fy, p in rng.uniform(0.3, 2.0, (3, 3))
    )
    image = Image.fromarray(np.clip(field + 128, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(4):
        cx, cy, r = (int(v) for v in rng.integers(25, 160, 3))
        draw.ellipse([cx - r // 3, cy - r // 3, cx + r // 3, cy + r // 3], fill=(250, 30, 90))
    return image.filter(ImageFilter.GaussianBlur(2))


def _file(path: Path, image: Image.Image, fmt: str = "PNG", **options: Any) -> Path:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/store.db"


def run(
    *args: str, db: str | None = None, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    extra = ["--database-url", db] if db else []
    result = CliRunner().invoke(app, ["hashes", *args, *extra], env=env)
    return result.exit_code, result.stdout, result.stderr


def run_json(*args: str, db: str | None = None) -> tuple[int, dict[str, Any]]:
    code, out, err = run(*args, "--json", db=db)
    assert out.strip(), err
    return code, json.loads(out)


def test_hash_prints_the_exact_and_perceptual_hashes(tmp_path: Path) -> None:
    path = _file(tmp_path / "a.png", _image(1))
    code, record = run_json("hash", str(path))
    assert code == 0
    assert set(record) == {"sha256", "md5", "pdq", "quality", "frames"}
    assert len(record["sha256"]) == 64 and len(record["md5"]) == 32 and len(record["pdq"]) == 64
    assert record["quality"] >= 50
    assert record["frames"] == [{"pdq": record["pdq"], "quality": record["quality"]}]

    code, out, _ = run("hash", str(path))
    assert code == 0 and record["pdq"] in out and record["sha256"] in out


def test_a_broken_image_is_an_error(tmp_path: Path, db: str) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for command in (("hash", str(broken)), ("match", str(broken))):
        extra = () if command[0] == "hash" else ("--database-url", db)
        code, out, err = run(*command, *extra, "--json")
        assert code == 2 and out == "", command  # never {"matched": false}
        assert "error:" in err and "image" in err
    code, _, err = run("hash", str(tmp_path / "absent.png"))
    assert code == 2 and "cannot read" in err


def test_import_list_match_and_disable(tmp_path: Path, db: str) -> None:
    banked = _file(tmp_path / "banked.png", _image(2))
    _, hashes = run_json("hash", str(banked))
    listing = tmp_path / "list.txt"
    listing.write_text(f"# known images\npdq {hashes['pdq']}\n{hashes['md5']}\n", encoding="utf-8")

    code, imported = run_json("import", "known", str(listing), "--description", "test", db=db)
    assert code == 0
    assert set(imported) == {"bank", "bank_id", "created", "added", "already_present"}
    assert imported["bank"] == "known" and imported["created"] is True
    assert imported["added"] == {"sha256": 0, "md5": 1, "pdq": 1}
    code, again = run_json("import", "known", str(listing), db=db)
    assert again["created"] is False and again["bank_id"] == imported["bank_id"]
    assert again["added"] == {"sha256": 0, "md5": 0, "pdq": 0}
    assert again["already_present"] == {"sha256": 0, "md5": 1, "pdq": 1}

    code, listed = run_json("list", db=db)
    assert code == 0
    assert listed["banks"] == [
        {
            "id": imported["bank_id"],
            "name": "known",
            "description": "test",
            "enabled": True,
            "actions": ["reject", "report", "ban"],
            "counts": {"sha256": 0, "md5": 1, "pdq": 1},
        }
    ]

    copy = _file(tmp_path / "copy.jpg", _image(2), "JPEG", quality=75)
    code, matched = run_json("match", str(copy), db=db)
    assert code == 0  # the command answered; --fail-on-match turns a match into exit 1
    assert set(matched) == {"matched", "bank", "hash_type", "distance"}
    assert matched["matched"] is True and matched["bank"] == "known"
    assert matched["hash_type"] == "pdq" and 0 <= matched["distance"] <= 31
    code, exact = run_json("match", str(banked), "--fail-on-match", db=db)
    assert code == 1 and (exact["hash_type"], exact["distance"]) == ("md5", None)

    other = _file(tmp_path / "other.png", _image(3))
    code, none = run_json("match", str(other), db=db)
    assert code == 0
    assert none == {"matched": False, "bank": None, "hash_type": None, "distance": None}

    code, disabled = run_json("disable", "known", db=db)
    assert code == 0 and disabled["enabled"] is False
    code, matched = run_json("match", str(copy), db=db)
    assert code == 0 and matched["matched"] is False
    code, enabled = run_json("enable", imported["bank_id"], db=db)  # by id as well as by name
    assert code == 0 and enabled["enabled"] is True
    code, out, _ = run("match", str(copy), db=db)
    assert code == 0 and "MATCH" in out and "known" in out


def test_a_bad_file_exits_non_zero_lists_its_lines_and_stores_nothing(
    tmp_path: Path, db: str
) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text(f"{'ab' * 16}\nnot-a-hash\n{'cd' * 32}\nmd5 {'ef' * 32}\n", encoding="utf-8")
    code, out, err = run("import", "bad-bank", str(bad), "--json", db=db)
    assert code == 2 and out == ""
    assert "line 2" in err and "line 4" in err and "nothing was imported" in err
    with Store(db) as store:
        assert store.list_hash_banks() == []

    code, imported = run_json("import", "bad-bank", str(bad), "--skip-invalid", db=db)
    assert code == 0 and imported["added"] == {"sha256": 1, "md5": 1, "pdq": 1}
    code, out, err = run("import", "bad-bank", str(bad), "--skip-invalid", db=db)
    assert code == 0 and "already present" in out and "skipped line 2" in err

    code, _, err = run("import", "x", str(bad), "--type", "sha1", db=db)
    assert code == 2 and "allowed: auto, sha256, md5, pdq" in err


def test_actions_and_unknown_banks(tmp_path: Path, db: str) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("ab" * 16 + "\n", encoding="utf-8")
    run_json("import", "review", str(listing), db=db)

    code, shown = run_json("actions", "review", db=db)  # no flag: show, change nothing
    assert code == 0 and shown["actions"] == ["reject", "report", "ban"]
    code, changed = run_json("actions", "review", "--no-reject", "--no-ban", db=db)
    assert code == 0 and changed["actions"] == ["report"]
    code, changed = run_json("actions", "review", "--ban", db=db)
    assert changed["actions"] == ["report", "ban"]

    for command in ("enable", "disable", "actions"):
        code, _, err = run(command, "no-such-bank", db=db)
        assert code == 2 and "no-such-bank" in err


def test_the_default_database_is_the_gateways(tmp_path: Path) -> None:
    listing = tmp_path / "list.txt"
    listing.write_text("ab" * 16 + "\n", encoding="utf-8")
    env = {"SAFESTACK_DATABASE_URL": f"sqlite:///{tmp_path}/gateway.db"}
    code, _, err = run("import", "from-env", str(listing), "--json", env=env)
    assert code == 0, err
    with Store(env["SAFESTACK_DATABASE_URL"]) as store:
        assert [bank.name for bank in store.list_hash_banks()] == ["from-env"]


def test_every_command_has_help() -> None:
    for command in ("hash", "import", "list", "match", "enable", "disable", "actions"):
        code, out, _ = run(command, "--help")
        assert code == 0 and "--json" in out, command
    code, out, _ = run("match", "--help")
    assert "--fail-on-match" in out and "never" in " ".join(out.split())
