"""Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` in README.md."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def replace_section(name: str, body: str, readme: Path = README) -> None:
    text = readme.read_text()
    pattern = re.compile(rf"(<!-- {name}:start -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: no <!-- {name}:start --> ... <!-- {name}:end --> markers")
    readme.write_text(pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text))


def publish(name: str, body: str, readme: bool = True) -> None:
    """Print `body`, then (readme) make it the README section `name`."""
    print(body)
    if readme:
        replace_section(name, body)
