"""``python -m app``: same as the ``adaqat-viewer`` console script."""

import sys

from app.main import main

sys.exit(main())
