"""The dependencies layer installs what uv.lock pins, minus what Lambda never imports (make layer-requirements)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.infra

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "layers" / "deps" / "requirements.txt"


def _pins(text: str) -> set[str]:
    return {line.split(";")[0].strip() for line in text.splitlines() if line and not line.lstrip().startswith("#")}


def test_the_layer_requirements_are_the_lock_files_runtime_set(tmp_path: Path) -> None:
    # Given the committed requirements and what `make layer-requirements` writes from uv.lock now
    out = tmp_path / "requirements.txt"
    run = subprocess.run(
        ["make", "-s", "layer-requirements", f"LAYER_REQUIREMENTS={out}"], cwd=ROOT, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr

    # Then they pin the same packages (a dependency added to pyproject without the export would not ship) ...
    committed, exported = _pins(REQUIREMENTS.read_text(encoding="utf-8")), _pins(out.read_text(encoding="utf-8"))
    assert committed == exported
    # ... and the downloader tokenizers brings along, never imported in Lambda, is left out
    assert not {p for p in committed if p.startswith(("huggingface-hub==", "hf-xet=="))}
    assert any(p.startswith("tokenizers==") for p in committed)
