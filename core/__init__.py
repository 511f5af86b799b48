"""Engine of the AdaLoRA-QAT chest X-ray viewer: reading studies, models, segmentation, training.

Never imports Qt: the GUI in ``app/`` observes this package, it never owns engine state.
"""

__version__ = "0.1.0"

import logging as _logging

# torchao (imported by peft) registers enums with torch's pytree and torch logs a deprecation
# warning for each at import; it is library noise, not something a user can act on.
_logging.getLogger("torch.utils._pytree").setLevel(_logging.ERROR)
