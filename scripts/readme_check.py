"""The README's set-up as a newcomer runs it (.ci/run uses this): its install-and-train command, cut to a
few iterations, then a check that the run folder holds what the README promises.

    python scripts/readme_check.py command       # the README's first bash command, as written there
    python scripts/readme_check.py check RUN     # exit 0 when RUN has previews, plots.png, a checkpoint and
                                                 # a generator.keras that Keras loads
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def first_command() -> str:
    """The first ```bash block of the README: the install-and-train command of its set-up."""
    block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.S).group(1).strip()
    if "\n" in block or "dcgan_faces.train" not in block:
        raise SystemExit(f"the README's first bash block is not one install-and-train command: {block!r}")
    return block


def check(run: Path) -> list[str]:
    """What the run folder lacks of what the README promises; empty when nothing."""
    missing = [name for name, found in (
        ("previews/iter-*.png", list(run.glob("previews/iter-*.png"))),
        ("plots.png", (run / "plots.png").is_file()),
        ("checkpoints/ckpt-*.npz", list(run.glob("checkpoints/ckpt-*.npz"))),
        ("generator.keras", (run / "generator.keras").is_file()),
    ) if not found]
    if not missing:
        import keras

        keras.models.load_model(run / "generator.keras")
    return missing


if __name__ == "__main__":
    if sys.argv[1:] == ["command"]:
        print(first_command())
    elif sys.argv[1:2] == ["check"] and len(sys.argv) == 3:
        lacking = check(Path(sys.argv[2]))
        print(f"README check: {sys.argv[2]} lacks {', '.join(lacking)}" if lacking else
              f"README check: {sys.argv[2]} has previews, plots.png, a checkpoint and generator.keras")
        sys.exit(1 if lacking else 0)
    else:
        sys.exit(__doc__)
