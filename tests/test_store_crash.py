"""Kill a writer process at random moments: the store must stay sound and keep every committed revision."""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from core.store import AnnotationStore
from tests.test_store_helpers import study_from_png

REPO = Path(__file__).resolve().parents[1]
SHAPE = (192, 256)
ROUNDS = 10

CHILD = textwrap.dedent(
    """
    import hashlib, sys
    import numpy as np
    from core.store.annotation_store import AnnotationStore

    root, key, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = np.random.default_rng(seed)
    store = AnnotationStore(root)
    print("ready", flush=True)
    while True:
        # blocky noise: a PNG that takes a little while to encode and write
        mask = (rng.random((24, 32)) > 0.5).repeat(8, 0).repeat(8, 1).astype(np.uint8) * 255
        revision = store.save_mask(key, mask, source="edit", reader="crash-test")
        sys.stdout.write(f"{revision} {hashlib.sha256(mask.tobytes()).hexdigest()}\\n")
        sys.stdout.flush()
    """
)


def test_sigkill_at_random_moments_loses_nothing_committed(tmp_path):
    root = tmp_path / "store"
    script = tmp_path / "writer.py"
    script.write_text(CHILD, encoding="utf-8")
    with AnnotationStore(root) as store:
        key = store.register_image(study_from_png(tmp_path / "image.png", SHAPE)).key

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    rng = random.Random(1234)
    reported: dict[int, str] = {}
    started = time.monotonic()
    for round_number in range(ROUNDS):
        child = subprocess.Popen(
            [sys.executable, str(script), str(root), key, str(round_number)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=str(REPO),
        )
        try:
            ready = child.stdout.readline()
            assert ready == b"ready\n", child.stderr.read().decode(errors="replace")
            time.sleep(rng.uniform(0.01, 0.25))
            child.kill()  # SIGKILL on POSIX: no cleanup handlers, no flushing
        finally:
            output, _ = child.communicate(timeout=10)
        lines = output.decode().split("\n")[:-1]  # a line cut by the kill has no newline: dropped
        for line in lines:
            revision, digest = line.split()
            reported[int(revision)] = digest

        with AnnotationStore(root) as store:
            assert store.integrity_check() == "ok"
            for revision_id, digest in reported.items():
                mask = store.load_revision_mask(revision_id)  # checks the file against the DB sha256
                assert hashlib.sha256(np.ascontiguousarray(mask).tobytes()).hexdigest() == digest
            latest = store.latest_revision(key)
            if latest is not None:
                store.latest_mask(key)  # the newest committed revision is always readable
            for revision in store.history(key):  # every committed revision, reported or not
                assert store.load_revision_mask(revision).shape == SHAPE

    assert len(reported) >= ROUNDS  # the child got some saves done most rounds
    assert time.monotonic() - started < 20
