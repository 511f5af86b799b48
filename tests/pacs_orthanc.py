"""A real Orthanc PACS for the PACS tests, on 127.0.0.1 only, with throwaway storage and its own config.

The Debian package ``orthanc`` provides ``/usr/sbin/Orthanc``; ``scripts/test.sh`` installs it when it is
missing. Each ``OrthancServer`` writes its own configuration (free ports, a temporary storage and index
folder, no plugins) and starts its own process, so the package's default service is never used. The
HTTP API refuses remote clients (``RemoteAccessAllowed: false``); its DICOM port knows one modality,
our AE title at 127.0.0.1, with the host checked. Tests talk to it only through 127.0.0.1.

The tests' offline guard (conftest.py) blocks every IP socket; ``loopback_allowed`` lets connections and
binds to 127.0.0.1 through inside a block while every other address stays blocked and recorded.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
ORTHANC_AE = "ORTHANC"
OUR_AE = "ADAQAT"


def orthanc_binary() -> str:
    path = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None)
    if path is None:
        pytest.skip("Orthanc is not installed (apt-get install orthanc; scripts/test.sh does it)")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _is_loopback(address) -> bool:
    return isinstance(address, tuple) and len(address) >= 2 and address[0] in (LOOPBACK, "localhost")


@contextlib.contextmanager
def loopback_allowed(network_guard):
    """Let sockets connect/bind to 127.0.0.1 inside the block; other addresses still hit the guard."""
    originals = network_guard.module._original
    with pytest.MonkeyPatch.context() as patch:
        for name in ("connect", "connect_ex", "bind"):
            guarded = getattr(socket.socket, name)
            original = originals.get("socket." + name, guarded)

            def method(self, address, *args, _guarded=guarded, _original=original, **kwargs):
                if _is_loopback(address):
                    return _original(self, address, *args, **kwargs)
                return _guarded(self, address, *args, **kwargs)

            patch.setattr(socket.socket, name, method)
        yield


class OrthancServer:
    """One Orthanc process; ``stop()`` and ``start()`` again keep its storage (a PACS restarted)."""

    def __init__(self, folder: Path, our_port: int, extra: dict | None = None) -> None:
        self.folder = folder
        self.extra = dict(extra or {})
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.our_port = our_port
        self.process: subprocess.Popen | None = None
        folder.mkdir(parents=True, exist_ok=True)
        self.config_path = folder / "orthanc.json"
        self.config_path.write_text(json.dumps(self.config(), indent=2), encoding="utf-8")

    def config(self) -> dict:
        return {
            "Name": "AdaQAT test PACS",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "Plugins": [],
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "DicomServerEnabled": True,
            "DicomAet": ORTHANC_AE,
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": True,
            "DicomCheckModalityHost": True,
            "DicomModalities": {"adaqat": [OUR_AE, LOOPBACK, self.our_port]},
            "DicomAlwaysAllowEcho": False,
            "DicomAlwaysAllowStore": False,
            "DicomAlwaysAllowFind": False,
            "DicomAlwaysAllowGet": False,
            "DicomAlwaysAllowMove": False,
            "DicomScuTimeout": 10,
            "SaveJobs": False,
            "StableAge": 1,
            "ConcurrentJobs": 1,
            **self.extra,
        }

    # -- process --------------------------------------------------------------------------------
    def start(self, timeout_s: float = 30.0) -> None:
        log = open(self.folder / "orthanc.log", "ab")
        self.process = subprocess.Popen([orthanc_binary(), str(self.config_path)], stdout=log, stderr=log,
                                        stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited at start: {(self.folder / 'orthanc.log').read_text()[-2000:]}")
            try:
                self.get("/system")
                if self._dicom_port_open():
                    return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.2)
        raise RuntimeError("Orthanc did not start within the timeout")

    def _dicom_port_open(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            return sock.connect_ex((LOOPBACK, self.dicom_port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    # -- REST (loopback only) -------------------------------------------------------------------
    def _request(self, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"):
        request = urllib.request.Request(f"http://{LOOPBACK}:{self.http_port}{path}", data=body, method=method)
        if body is not None:
            request.add_header("Content-Type", content_type)
        with urllib.request.urlopen(request, timeout=30) as response:
            data = response.read()
        return data

    def get(self, path: str):
        return json.loads(self._request("GET", path))

    def get_bytes(self, path: str) -> bytes:
        return self._request("GET", path)

    def post(self, path: str, payload) -> object:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        content_type = "application/dicom" if isinstance(payload, bytes) else "application/json"
        return json.loads(self._request("POST", path, body, content_type) or b"null")

    def upload(self, path: Path) -> dict:
        return self.post("/instances", Path(path).read_bytes())

    def study_instances(self, study_uid: str) -> list[dict]:
        """Every instance of the study with that Study Instance UID, with its tags (simplified)."""
        found = self.post("/tools/find", {"Level": "Study", "Query": {"StudyInstanceUID": study_uid}})
        out = []
        for orthanc_id in found:
            for instance in self.get(f"/studies/{orthanc_id}/instances"):
                out.append(instance)
        return out


# -- fixtures (imported by the tests/test_pacs_*.py modules) ---------------------------------------
SHARED_CHEST_DICOMS = ("RG1_UNCR.dcm", "1.2.276.0.7230010.3.1.4.8323329.6904.1517875201.850819.dcm", "RG3_J2KI.dcm",
                       "MR2_J2KI.dcm")


@pytest.fixture
def loopback(network_guard):
    """127.0.0.1 is reachable for this test (Orthanc, our listener); everything else stays blocked."""
    with loopback_allowed(network_guard):
        yield


@pytest.fixture
def our_port(loopback) -> int:
    return free_port()


@pytest.fixture
def orthanc(tmp_path, our_port, loopback):
    """A running Orthanc loaded with shared DICOMs (two chest CRs, an extremity CR, an MR)."""
    from tests.shared_data import shared_file

    server = OrthancServer(tmp_path / "orthanc", our_port)
    server.start()
    try:
        for name in SHARED_CHEST_DICOMS:
            server.upload(shared_file("dicom", name))
        yield server
    finally:
        server.stop()


@pytest.fixture
def pacs_config(orthanc, our_port):
    from core.pacs import PacsConfig

    return PacsConfig(pacs_ae=ORTHANC_AE, pacs_host=LOOPBACK, pacs_port=orthanc.dicom_port, our_ae=OUR_AE,
                      our_port=our_port, accepted_calling_aes=(ORTHANC_AE,), connect_timeout_s=3, timeout_s=20)


def dicom_uids(path: Path) -> tuple[str, str]:
    """(StudyInstanceUID, SOPInstanceUID) of a DICOM file."""
    import pydicom

    ds = pydicom.dcmread(path, stop_before_pixels=True)
    return str(ds.StudyInstanceUID), str(ds.SOPInstanceUID)
