"""``adaqat listen``: a DICOM listener without the GUI, for a reading station.

Chest radiographs pushed to it (C-STORE) are stored atomically under ``--inbox`` and segmented
automatically into the annotation store (``--store``, default ``INBOX/store``), which the viewer opens
with ``adaqat-viewer --store``. One line per image on stdout (file name and lung fraction, never
patient data); problems are ``error:`` lines and the listener goes on. Ctrl+C or SIGTERM stops it
after the images already received are segmented.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

from .common import ModelLoadError, add_runtime_options, fail, open_model, say


def add_parser(sub) -> None:
    parser = sub.add_parser("listen", help="receive chest X-rays from a PACS (DICOM C-STORE) and segment them")
    parser.add_argument("--port", type=int, required=True, help="TCP port to listen on (e.g. 11112)")
    parser.add_argument("--ae-title", required=True, help="our AE title, as configured on the PACS")
    parser.add_argument("--inbox", type=Path, required=True, help="folder for received images")
    parser.add_argument("--allow", action="append", default=[], metavar="AE_TITLE",
                        help="calling AE title allowed to send (repeat for several); none are allowed by default")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only; 0.0.0.0 opens it to the network)")
    parser.add_argument("--store", type=Path, default=None, help="annotation store for the masks (default INBOX/store)")
    parser.add_argument("--model", default=None, help="model name or path (default: the active model)")
    parser.add_argument("--timeout", type=float, default=30.0, help="network timeout in seconds (default 30)")
    add_runtime_options(parser)
    parser.set_defaults(run=run)


def run(args, stop: threading.Event | None = None, ready: threading.Event | None = None) -> int:
    """Listen until ``stop`` is set (or Ctrl+C / SIGTERM). ``ready`` is set once the port is open."""
    from ..pacs import PacsConfig, PacsError
    from ..pacs.arrivals import ArrivalSegmenter
    from ..pacs.listener import StorageListener
    from ..segment.predictor import Predictor
    from ..store import AnnotationStore, StoreError

    config = PacsConfig(our_ae=args.ae_title.strip(), our_port=args.port, listen_host=args.host,
                        accepted_calling_aes=tuple(a.strip() for a in args.allow if a.strip()), timeout_s=args.timeout)
    if not config.accepted_calling_aes:
        return fail("no calling AE title is allowed, so nobody could send images; add --allow with the PACS's AE title")
    try:
        loaded, device = open_model(args.model, args)
    except (ModelLoadError, RuntimeError) as error:
        return fail(str(error))
    try:
        store = AnnotationStore(args.store or args.inbox / "store")
    except StoreError as error:
        return fail(str(error))

    def report(arrival) -> None:
        if arrival.error:
            say("error", arrival.error)
            return
        for warning in arrival.warnings:
            say("warning", f"{arrival.path.name}: {warning}")
        if arrival.key:
            kept = "" if arrival.saved else " (a reader's mask was kept)"
            confidence = "" if arrival.confidence is None else f", confidence {arrival.confidence:.2f}"
            flags = f", flagged: {', '.join(arrival.flags)}" if arrival.flags else ""
            print(f"segmented: {arrival.path.name}: lung fraction {arrival.lung_fraction:.3f}{confidence}{flags}{kept}",
                  flush=True)

    segmenter = ArrivalSegmenter(store, lambda: Predictor(loaded, device=device), on_done=report)
    listener = StorageListener(config, args.inbox, on_stored=segmenter.submit)
    stop = stop or threading.Event()
    previous = _on_sigterm(stop)
    segmenter.start()
    try:
        listener.start()
    except PacsError as error:
        segmenter.stop()
        store.close()
        return fail(str(error))
    print(f"listening as {config.our_ae} on {config.listen_host}:{listener.port}; "
          f"accepting {', '.join(config.accepted_calling_aes)}; inbox {args.inbox}", flush=True)
    if ready is not None:
        ready.set()
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
        segmenter.stop(timeout_s=None)  # what was received is segmented before we exit
        store.close()
        _restore_sigterm(previous)
    print(f"stopped: {listener.stored} image(s) received, {segmenter.done} processed", flush=True)
    return 0


def _on_sigterm(stop: threading.Event):
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: stop.set())


def _restore_sigterm(previous) -> None:
    if previous is not None:
        signal.signal(signal.SIGTERM, previous)
