"""The README's Layout tree lists what the repository holds (git ls-files): every entry
exists, every tracked file is under an entry, and every module of the package, the sweeper
plugin and the benchmarks has an entry of its own."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# folders whose files each need their own line (the modules a reader looks for)
ONE_LINE_EACH = re.compile(
    r"^(dsnn/[^/]+\.py|hydra_plugins/smac_sweeper/[^/]+\.py|benchmarks/[^/]+\.(py|sh))$"
)


def _tracked() -> list[str]:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    return [line for line in out.splitlines() if line]


def _entries() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"^## Layout\n+```\n(.*?)^```", text, re.S | re.M)
    assert block, "README.md has no Layout code block"
    # an entry starts its line; indented lines continue the description above
    return [line.split()[0] for line in block.group(1).splitlines() if line[:1].strip()]


def test_every_layout_entry_exists():
    tracked = _tracked()
    for entry in _entries():
        if entry.endswith("/"):
            assert any(f.startswith(entry) for f in tracked), f"README Layout: {entry} is gone"
        else:
            assert entry in tracked, f"README Layout: {entry} is not a tracked file"


def test_every_tracked_file_is_in_the_layout():
    entries = _entries()
    folders = [e for e in entries if e.endswith("/")]
    for path in _tracked():
        if ONE_LINE_EACH.match(path):
            assert path in entries, f"README Layout lacks {path}"
        elif path not in entries:
            assert any(path.startswith(f) for f in folders), f"README Layout lacks {path}"
