"""Engine of the AdaLoRA-QAT chest X-ray viewer: reading studies, models, segmentation, training.

Never imports Qt: the GUI in ``app/`` observes this package, it never owns engine state.
"""

__version__ = "0.1.0"

import logging as _logging
import os as _os

# torchao (imported by peft) registers enums with torch's pytree and torch logs a deprecation
# warning for each at import; it is library noise, not something a user can act on.
_logging.getLogger("torch.utils._pytree").setLevel(_logging.ERROR)

# ONNX Runtime (1.2x and later) writes a device identifier (a random UUID, ``deviceid``) and a
# telemetry-event database under ~/.cache/Microsoft/DeveloperTools/.onnxruntime when it is first
# imported. Nothing is sent from this product (it makes no network call), but a reading-room PC
# should not collect either: ORT_DISABLE_TELEMETRY=1, read by onnxruntime at import, stops both files
# being created. Set here, before any engine module can import onnxruntime; a value the user or the
# site already set is kept.
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
