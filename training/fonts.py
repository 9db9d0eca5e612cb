"""The font families printed digits are rendered from, and which whole families are held out.

A family is a *design*, not a file name: FreeSans is a copy of Nimbus Sans (Helvetica), Hack
of DejaVu Sans Mono, Open Sans of the same drawing as Noto Sans. Each copy is grouped with its
original, so a held-out family has no look-alike in training. Fonts come from Debian packages
(`scripts/install_training_fonts.sh`); every weight and italic a package ships is used.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

FONT_DIR = Path("/usr/share/fonts")
INSTALL_HINT = "install them with: bash scripts/install_training_fonts.sh"

# family -> regular expression on the font file's name (opentype/truetype files only)
FAMILIES: dict[str, str] = {
    "dejavu-sans": r"^DejaVuSans(Condensed)?(-|\.ttf)",
    "dejavu-serif": r"^DejaVuSerif",
    "dejavu-mono": r"^(DejaVuSansMono|Hack-)",
    "liberation-sans": r"^LiberationSans(Narrow)?-",
    "liberation-serif": r"^LiberationSerif-",
    "liberation-mono": r"^LiberationMono-",
    "helvetica": r"^(NimbusSans(Narrow)?-|FreeSans)",
    "times": r"^(NimbusRoman-|FreeSerif)",
    "courier": r"^(NimbusMonoPS-|FreeMono)",
    "century-schoolbook": r"^C059-",
    "palatino": r"^P052-",
    "bookman": r"^URWBookman-",
    "avant-garde": r"^URWGothic-",
    "zapf-chancery": r"^Z003-",
    "noto-sans": r"^(NotoSans(Display)?-|OpenSans-)",
    "noto-serif": r"^NotoSerif(Display)?-",
    "carlito": r"^Carlito-",
    "caladea": r"^Caladea-",
    "lato": r"^Lato-",
    "cantarell": r"^Cantarell-",
    "comic-neue": r"^ComicNeue-",
    "go": r"^Go-(?!Smallcaps)",
    "inconsolata": r"^Inconsolata",
    "garamond": r"^EBGaramond",
    "libertine": r"^Lin(Libertine|Biolinum)_",
    "roboto": r"^Roboto",
}

# Whole families never used in training: a humanist sans (Calibri's metrics), a serif (Cambria's),
# a geometric-humanist sans with nine weights, an old-style serif, a slab-ish sans with its
# monospace, and a thin-stroked sans. Their `1`s come with and without flag and foot.
HELDOUT_FAMILIES = ("carlito", "caladea", "lato", "palatino", "go", "cantarell")


@lru_cache(maxsize=1)
def font_files() -> dict[str, tuple[Path, ...]]:
    """family -> its font files (sorted, so the order is the same on every machine)."""
    files = sorted(p for p in FONT_DIR.rglob("*") if p.suffix in (".ttf", ".otf"))
    found = {
        family: tuple(p for p in files if re.search(pattern, p.name))
        for family, pattern in FAMILIES.items()
    }
    missing = [family for family, paths in found.items() if not paths]
    if missing:
        raise FileNotFoundError(f"no font files for {', '.join(missing)}: {INSTALL_HINT}")
    return found


def training_families() -> list[str]:
    """Families printed training digits are drawn from."""
    return [family for family in FAMILIES if family not in HELDOUT_FAMILIES]


def heldout_families() -> list[str]:
    """Families kept for evaluation only."""
    return list(HELDOUT_FAMILIES)
