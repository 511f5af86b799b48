"""Slim the reader bundle's binaries (used by adaqat.spec for ADAQAT_BUNDLE=reader).

OpenCV's wheel links FFmpeg (video I/O), libavif (AVIF images, with libaom to write them) and OpenBLAS
(LAPACK for cv2.solve/SVD and cv2.gemm) as DT_NEEDED libraries, ~95 MB with what they pull in (libdav1d,
libvpx, libgfortran, ...). The reader calls none of them: it reads DICOM through pydicom and PNG/JPEG through cv2.imdecode,
and uses resize, connected components, contours, flood fill and drawing. Excluding the libraries would
make `import cv2` fail (the dynamic loader needs every DT_NEEDED file), so each is replaced by a stand-in
with the same file name, soname and symbol versions that defines exactly the functions cv2 imports from
it; called anyway, a stand-in prints which library the reader bundle left out and aborts. The libraries
only the replaced ones needed are then left out. Shared objects built with a symbol table are stripped
(`strip --strip-unneeded`: the dynamic symbols stay), the way Linux distributions ship them, except where
the stripped copy would not load (NumPy's patchelf-ed OpenBLAS: its segments end up misaligned).

Needs binutils (readelf, strip) and a C compiler at build time; without them the bundle keeps the real
libraries and says so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

# OpenCV's companions that the reader never calls (file-name prefixes in opencv_python_headless.libs/)
# (libavif stays: OpenCV creates its AVIF encoder when it lists its codecs, at the first imread/imencode;
# the AV1 encoder libavif links, libaom, is called only when an AVIF image is written)
STAND_IN_PREFIXES = ("libavcodec-", "libavformat-", "libavutil-", "libswscale-", "libaom-", "libopenblasp-")
CV2_LIBS_DIR = "opencv_python_headless.libs"

_STUB_C = """\
#include <stdio.h>
#include <stdlib.h>
static void adaqat_left_out(const char *name) {
    fprintf(stderr, "error: %s() of LIBRARY is left out of the adaqat-reader bundle (OpenCV video, AVIF and LAPACK "
            "functions); use the adaqat-annotator bundle for this\\n", name);
    abort();
}
FUNCTIONS
"""


def _run(*args: str) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True).stdout


def tools_missing() -> list[str]:
    return [tool for tool in ("readelf", "strip", "cc") if shutil.which(tool) is None]


def is_elf(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            return handle.read(4) == b"\x7fELF"
    except OSError:
        return False


def needed(path: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", _run("readelf", "-d", "-W", str(path)))


def soname(path: Path) -> str:
    found = re.search(r"\(SONAME\)\s+Library soname: \[([^\]]+)\]", _run("readelf", "-d", "-W", str(path)))
    return found.group(1) if found else path.name


def _dynamic_symbols(path: Path, defined: bool) -> set[tuple[str, str]]:
    """(name, version) of the dynamic symbols, defined ones or undefined ones ('' when unversioned)."""
    symbols = set()
    for line in _run("readelf", "--dyn-syms", "-W", str(path)).splitlines():
        fields = line.split()
        if len(fields) < 8 or not fields[0].rstrip(":").isdigit():
            continue
        kind, section, name = fields[3], fields[6], fields[7]
        if (section == "UND") == defined or kind not in ("FUNC", "NOTYPE", "OBJECT", "IFUNC") or not name:
            continue
        base, _, version = name.replace("@@", "@").partition("@")
        symbols.add((base, version.split(" ")[0]))
    return symbols


def build_stand_in(real: Path, importers: list[Path], out_dir: Path) -> Path:
    """A library named like ``real`` defining the functions of ``real`` that ``importers`` use (each aborts)."""
    defined = {name: version for name, version in _dynamic_symbols(real, defined=True)}
    kinds = {}
    for line in _run("readelf", "--dyn-syms", "-W", str(real)).splitlines():
        fields = line.split()
        if len(fields) >= 8 and fields[6] != "UND":
            kinds[fields[7].replace("@@", "@").partition("@")[0]] = fields[3]
    wanted: dict[str, str] = {}
    for importer in importers:
        for name, version in _dynamic_symbols(importer, defined=False):
            if name in defined and (not version or version == defined[name]):
                wanted[name] = defined[name]
    objects = sorted(name for name in wanted if kinds.get(name) == "OBJECT")
    if objects:
        raise RuntimeError(f"{real.name}: {objects[:3]} are data, not functions; no stand-in possible")
    functions = "\n".join(f'void adaqat_stub_{i}(void) __asm__("{name}");\n'
                          f'void adaqat_stub_{i}(void) {{ adaqat_left_out("{name}"); }}'
                          for i, name in enumerate(sorted(wanted)))
    out_dir.mkdir(parents=True, exist_ok=True)
    source = out_dir / f"{real.name}.c"
    source.write_text(_STUB_C.replace("LIBRARY", real.name).replace("FUNCTIONS", functions))
    command = ["cc", "-shared", "-fPIC", "-O1", "-s", f"-Wl,-soname,{soname(real)}", "-o", str(out_dir / real.name),
               str(source)]
    versions: dict[str, list[str]] = {}
    for name, version in wanted.items():
        versions.setdefault(version, []).append(name)
    if any(versions):  # versioned symbols (FFmpeg): the same version nodes as the real library
        script = out_dir / f"{real.name}.map"
        script.write_text("".join(f"{version} {{ global: {'; '.join(sorted(names))}; }};\n"
                                  for version, names in sorted(versions.items()) if version))
        command.insert(-1, f"-Wl,--version-script={script}")
    _run(*command)
    return out_dir / real.name


def loads_aligned(path: Path) -> bool:
    """Whether every PT_LOAD segment has offset = address modulo the page (else: "ELF load command
    address/offset not page-aligned" at dlopen, which stripping a patchelf-ed wheel library can cause)."""
    for line in _run("readelf", "-l", "-W", str(path)).splitlines():
        fields = line.split()
        if fields and fields[0] == "LOAD" and int(fields[1], 16) % 4096 != int(fields[2], 16) % 4096:
            return False
    return True


def _strip(src: Path, out_dir: Path, dest: str) -> Path:
    """A copy of ``src`` without its symbol table; ``src`` itself when it has none or stripping would misalign it."""
    if ".symtab" not in _run("readelf", "-S", "-W", str(src)):
        return src
    target = out_dir / "stripped" / dest
    target.parent.mkdir(parents=True, exist_ok=True)
    _run("strip", "--strip-unneeded", "-o", str(target), str(src))
    if not loads_aligned(target):
        target.unlink()
        return src
    return target


def _from_cv2_libs(src: str) -> bool:
    return f"/{CV2_LIBS_DIR}/" in src.replace("\\", "/")


def slim_binaries(binaries: list[tuple], out_dir: Path, log=print) -> list[tuple]:
    """The reader's binaries TOC (dest, src, typecode) with stand-ins, unreferenced companions dropped, stripped.

    A library can appear twice (its folder and a top-level name that PyInstaller turns into a link), so
    everything is decided by the source file and each replacement is made once per source."""
    missing = tools_missing()
    if missing:
        log(f"reader_slim: {', '.join(missing)} not found: the reader keeps OpenCV's full libraries, unstripped")
        return binaries
    out_dir = Path(out_dir)
    entries = [list(entry) for entry in binaries]
    elf = {entry[1]: needed(Path(entry[1])) for entry in entries if is_elf(Path(entry[1]))}
    stand_ins: dict[str, str] = {}  # real source -> stand-in
    for src in list(elf):
        name = Path(src).name
        if _from_cv2_libs(src) and name.startswith(STAND_IN_PREFIXES):
            importers = [Path(other) for other, libs in elf.items() if name in libs
                         and not (_from_cv2_libs(other) and Path(other).name.startswith(STAND_IN_PREFIXES))]
            stand_ins[src] = str(build_stand_in(Path(src), importers, out_dir / "stand-ins"))
    for entry in entries:
        entry[1] = stand_ins.get(entry[1], entry[1])
    # leave out the companions that only the replaced libraries needed (to a fixed point)
    while True:
        referenced = set()
        for src in {entry[1] for entry in entries}:
            if src in elf or src in stand_ins.values():
                referenced.update(elf.get(src) or needed(Path(src)))
        unused = [entry for entry in entries if _from_cv2_libs(entry[1]) and Path(entry[1]).name not in referenced]
        if not unused:
            break
        for entry in unused:
            entries.remove(entry)
            log(f"reader_slim: left out {entry[0]} (only OpenCV's video/AVIF/LAPACK libraries needed it)")
    stripped: dict[str, str] = {}
    for entry in entries:
        src = entry[1]
        if src in elf:  # not a stand-in (those are built stripped)
            if src not in stripped:
                stripped[src] = str(_strip(Path(src), out_dir, entry[0]))
            entry[1] = stripped[src]
    log(f"reader_slim: stand-ins for {sorted(Path(src).name for src in stand_ins)}; "
        f"stripped {sum(1 for src, new in stripped.items() if src != new)} libraries")
    return [tuple(entry) for entry in entries]


def drop_dangling_links(toc: list[tuple], *others: list[tuple]) -> list[tuple]:
    """``toc`` without the SYMLINK entries (PyInstaller's top-level links to libraries in ``*.libs/``)
    whose target is no longer collected, e.g. after :func:`slim_binaries` left it out."""
    dests = {entry[0] for entries in (toc, *others) for entry in entries if entry[2] != "SYMLINK"}
    return [entry for entry in toc
            if entry[2] != "SYMLINK" or os.path.normpath(os.path.join(os.path.dirname(entry[0]), entry[1])) in dests]
