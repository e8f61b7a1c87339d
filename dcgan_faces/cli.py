"""`dcgan-faces COMMAND [options]`: every tool of the package behind one installed command.

`dcgan-faces train ...` is `python -m dcgan_faces.train ...`, and so on for each command below.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {  # command: example
    "train": "dcgan-faces train --data ~/photos/faces --res 64",
    "prepare": "dcgan-faces prepare --data ~/photos/faces --res 64",
    "generate": "dcgan-faces generate --model runs/faces_64 --n 64 --out faces.png",
    "evaluate": "dcgan-faces evaluate --model runs/faces_64 --n 1000",
    "movie": "dcgan-faces movie runs/faces_64",
    "plots": "dcgan-faces plots runs/faces_64",
}


def usage() -> str:
    lines = ["Train a DCGAN that makes faces from a folder of face photos, and look at its faces.", "",
             f"Example: {COMMANDS['train']}", "",
             "usage: dcgan-faces COMMAND [options]   (dcgan-faces COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:9s} {example}" for name, example in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command, *rest = argv
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)} (see dcgan-faces --help)",
              file=sys.stderr)
        return 2
    return importlib.import_module(f"dcgan_faces.{command}").main(rest, prog=f"dcgan-faces {command}")


if __name__ == "__main__":
    sys.exit(main())
