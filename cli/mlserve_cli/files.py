"""Turn the FILE|DIR arguments into the list of files to send, in a stable order."""

from __future__ import annotations

from pathlib import Path


def expand(arguments: list[str]) -> list[Path]:
    """Files as given; a directory's visible files (sorted, not recursive).

    A path that does not exist is kept, so it is reported as a failed file.
    """
    files: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            files.extend(
                sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
            )
        else:
            files.append(path)
    return files
