"""Working with the clinic's PACS over DICOM DIMSE (pynetdicom): find, fetch, receive, send back.

``config`` (where the PACS is, who we are, who may call us), ``query`` (C-FIND), ``retrieve`` (C-GET into
the local study folder), ``listener`` (our C-STORE SCP, atomic storage), ``arrivals`` (segmenting what
arrives), ``results`` and ``report`` (DICOM SEG and the lung-area SR to send back), ``outbox`` (the
persistent queue of results waiting for the PACS) and ``send`` (C-STORE SCU). No DICOM network code is
written here by hand; every message goes through pynetdicom.
"""

from .config import PacsConfig
from .errors import PacsError

__all__ = ["PacsConfig", "PacsError"]
