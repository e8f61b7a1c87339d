"""A quiet start: TensorFlow's C++ and absl start-up lines are hidden, so our first line is the first one a
user reads. Anything else printed during the import (a real error) still reaches stderr.

`--verbose` (train) or DCGAN_FACES_VERBOSE=1 (every tool) shows everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

VERBOSE_ENV = "DCGAN_FACES_VERBOSE"
NOISE = re.compile(r"absl::InitializeLog|cpu_feature_guard|This TensorFlow binary is optimized|To enable the "
                   r"following instructions|oneDNN custom operations|Unable to register cu(DNN|FFT|BLAS) factory|"
                   r"TF-TRT Warning|computation placer already registered|rebuild TensorFlow with the appropriate")


def verbose(flag: bool = False) -> bool:
    return flag or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def import_tensorflow(show_all: bool = False) -> None:
    """Import TensorFlow and Keras, dropping their known start-up noise unless `show_all`."""
    if verbose(show_all) or "tensorflow" in sys.modules:
        import keras  # noqa: F401
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = kept_lines(captured.read().decode("utf-8", "replace"))
            if kept:
                print("\n".join(kept), file=sys.stderr)


def kept_lines(text: str) -> list[str]:
    """The lines of what the import printed that are not known start-up noise."""
    return [line for line in text.splitlines() if line.strip() and not NOISE.search(line)]
