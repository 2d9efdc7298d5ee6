"""Where the public labelled datasets live (``shared/datasets`` beside the repository).

Training, the recorded-responses model and the evaluations all read them; one function finds them.
"""

from __future__ import annotations

import os
from pathlib import Path

from safestack.errors import DataError

__all__ = ["find_datasets_dir"]


def find_datasets_dir(explicit: str | Path | None = None) -> Path:
    """Locate ``shared/datasets``: an explicit path, ``$SAFESTACK_DATASETS``, or beside the repo."""
    if explicit is not None:  # an explicit choice is never silently replaced by a default
        if (Path(explicit) / "xstest" / "xstest_prompts.csv").is_file():
            return Path(explicit)
        raise DataError(
            f"cannot find the public datasets in {explicit} (no xstest/xstest_prompts.csv); "
            "pass the folder that holds xstest/, jailbreakbench/, …"
        )
    candidates: list[Path] = []
    if env := os.environ.get("SAFESTACK_DATASETS"):
        candidates.append(Path(env))
    here = Path.cwd().resolve()
    for parent in [here, *here.parents][:4]:
        candidates.append(parent / "shared" / "datasets")
        candidates.append(parent.parent / "shared" / "datasets")
    for candidate in candidates:
        if (candidate / "xstest" / "xstest_prompts.csv").is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates[:3])
    raise DataError(
        f"cannot find the public datasets (looked in {tried} …); pass --datasets DIR or set "
        "SAFESTACK_DATASETS to the folder that holds xstest/, jailbreakbench/, …"
    )
