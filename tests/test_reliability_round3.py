"""Issue 29's smaller findings: the train progress line, odd paths, odd training data, the viewer.

Real CLI (in process, stderr read at the file-descriptor level), real files built here.
"""

from __future__ import annotations

from core.cli.common import fail
from core.cli.train_command import ProgressBar
from core.training.progress import ProgressEvent


def test_an_error_during_training_gets_its_own_line_not_the_progress_bar(capfd):
    bar = ProgressBar()
    bar(ProgressEvent(stage="stage1", epoch=1, epochs=3, step=2, steps=10, loss=0.5))
    assert fail("/out/model-fp32/model.safetensors: could not write (No space left on device)") == 2
    err = capfd.readouterr().err
    assert "\nerror: /out/model-fp32" in err
    assert err.splitlines()[-1].startswith("error: ")
