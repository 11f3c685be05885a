"""``python -m sim``: run scenarios over seeds, replay one (see ``sim.runner``)."""

import sys

from .runner import main

if __name__ == "__main__":
    sys.exit(main())
