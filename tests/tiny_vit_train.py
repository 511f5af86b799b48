"""``adaqat`` with ``sam_vit_b`` built as the tiny test ViT, for training runs a test can afford.

``python -m tests.tiny_vit_train train --backbone sam_vit_b ...`` is ``python -m core.cli train ...``
with the architecture table changed and nothing else: the same argument parsing, trainer, DDP code
and model folders, on a 3-million-parameter model (0.15 s a step on one CPU core instead of 5 s).
"""

import sys

from core.models import sam_vit

sam_vit.VARIANTS["sam_vit_b"] = sam_vit.TINY_TEST_CONFIG

if __name__ == "__main__":
    from core.cli import main

    sys.exit(main())
