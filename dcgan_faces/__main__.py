"""`python -m dcgan_faces COMMAND ...`: the same as the installed `dcgan-faces` command."""

import sys

from dcgan_faces.cli import main

sys.exit(main())
