"""Input files that exist but cannot be read: the error names the file and the next step.

Every writer renames a finished temporary file into place (``dfdetect.atomic``), so a damaged
input comes from outside the workflow (a full disk on another machine, a copy cut short, a
hand edit). A job that meets one fails with ``CorruptFileError``, whose message says which file
and what to do; inside the workflow that is to remove it and rerun ``snakemake``, which rebuilds
it (every finished product is a target of ``rule all``) and what depends on it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

REBUILD = "remove it and rerun `snakemake`: the workflow rebuilds it, and what depends on it"
REBUILD_MODEL = (
    "if a train job wrote it, remove it and rerun `snakemake` to retrain (the model of the last finished "
    "training stays in last_good/ beside it)"
)


class CorruptFileError(ValueError):
    """A file that exists but cannot be read; the message names it, the cause and the next step."""

    def __init__(self, path: str | Path, cause: object, fix: str = REBUILD) -> None:
        super().__init__(f"{path} cannot be read ({cause}): the file is damaged or incomplete; {fix}")
        self.path = Path(path)


def read_parquet(path: str | Path, **options) -> pd.DataFrame:
    """``pd.read_parquet`` whose errors on a damaged file name it (a missing one stays FileNotFoundError)."""
    try:
        return pd.read_parquet(path, **options)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError, ArrowIOError an OSError
        raise CorruptFileError(path, error) from error


def check_model_archive(path: str | Path) -> None:
    """Raise unless ``path`` can be a saved Keras model: a ``.keras`` file is a zip archive.

    Keras itself says "File not found" for a damaged archive that exists; this names what is wrong.
    """
    import zipfile

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a Keras model archive (.keras)")
    if not zipfile.is_zipfile(path):
        raise CorruptFileError(path, "not a Keras model archive: a .keras file is a zip file", REBUILD_MODEL)
