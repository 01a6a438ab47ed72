"""``./run.sh``'s last step: ``reflex run --env prod --single-port``, reusing the console bundle built last
time when nothing it is built from has changed.

Reflex compiles the console and builds its bundle (vite) at every production start: 14-22 s of a restart on a
2-core machine went there, rebuilding the same files (issue 19 §4). The bundle depends on the console's
sources, the packages (Reflex's version), the port (``.web/env.json`` names it) and Reflex's settings, so a
digest of those is kept beside the build (``.web/ic_bundle.sha256``, written once a build succeeded). When it
matches, the compile and the build are skipped and the rest of ``reflex run`` runs as usual; otherwise
``reflex run`` builds as it always does. Two Reflex functions are replaced for that (``reflex.reflex.
_compile_app`` and ``reflex.utils.build.setup_frontend_prod``), with Reflex pinned in requirements.txt.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WEB = ROOT / ".web"
STAMP = WEB / "ic_bundle.sha256"
BUILT = WEB / "build" / "client" / "index.html"
# What the bundle is built from; the Python files of app/ include pages, components and states (which
# decide the compiled pages), and more than strictly needed is only a rebuild too many.
SOURCE_FILES = ("rxconfig.py", "requirements.txt", "reflex.lock")
SOURCE_TREES = (("app", "*.py"), ("assets", "*"))
SETTINGS_PREFIXES = ("REFLEX_", "VITE_", "NODE_")  # settings that reach the compiled pages or the build


def bundle_digest(arguments: list[str], environ: dict[str, str] | None = None) -> str:
    environ = dict(os.environ if environ is None else environ)
    digest = hashlib.sha256()
    files = [ROOT / name for name in SOURCE_FILES]
    for tree, pattern in SOURCE_TREES:
        files += sorted((ROOT / tree).rglob(pattern))
    for path in files:
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(f"{path.relative_to(ROOT)}\0".encode())
            digest.update(path.read_bytes())
    digest.update(f"python {sys.version_info[:2]}\0".encode())
    digest.update(("args " + " ".join(arguments) + "\0").encode())  # the port among them
    for name in sorted(environ):
        if name.startswith(SETTINGS_PREFIXES) and name != "REFLEX_SKIP_COMPILE":
            digest.update(f"{name}={environ[name]}\0".encode())
    return digest.hexdigest()


def bundle_is_current(digest: str) -> bool:
    return BUILT.is_file() and STAMP.is_file() and STAMP.read_text().strip() == digest


def main(arguments: list[str]) -> int:
    from reflex import reflex as reflex_cli
    from reflex.utils import build

    digest = bundle_digest(arguments)
    if bundle_is_current(digest):
        print("==> the console bundle is current: not built again", flush=True)

        def no_compile(**_: object) -> None:
            return None

        def no_build(root: Path) -> None:
            return None

        reflex_cli._compile_app = no_compile  # type: ignore[assignment]
        build.setup_frontend_prod = no_build
    else:
        STAMP.unlink(missing_ok=True)  # a build that fails halfway leaves no stamp behind
        build.setup_frontend_prod = _stamped(build.setup_frontend_prod, digest)
    _serve_in_this_process_when_one_worker()
    sys.argv = ["reflex", "run", "--env", "prod", "--single-port", *arguments]
    return int(reflex_cli.cli() or 0)


def _serve_in_this_process_when_one_worker() -> None:
    """With one worker, serve from this process rather than a supervisor and a forked worker
    (``app/embedded_server.py``)."""
    from reflex.utils import exec as reflex_exec

    from app import embedded_server

    multi_process = reflex_exec.run_granian_backend_prod

    def serve(host: str, port: int, loglevel: object, app_target: str | None = None) -> None:
        workers = int(os.getenv("GRANIAN_WORKERS", str(reflex_exec._get_backend_workers())))
        if app_target is not None or not embedded_server.wanted(workers):
            multi_process(host, port, loglevel, app_target)  # type: ignore[arg-type]
            return
        level = os.getenv("GRANIAN_LOG_LEVEL", getattr(loglevel, "value", str(loglevel)))
        embedded_server.serve(
            reflex_exec.get_app_instance_from_file(), host, port, level, reflex_exec._granian_log_dictconfig()
        )

    reflex_exec.run_granian_backend_prod = serve  # type: ignore[assignment]


def _stamped(setup_frontend_prod: Callable[[Path], None], digest: str) -> Callable[[Path], None]:
    def build_then_stamp(root: Path) -> None:
        setup_frontend_prod(root)
        STAMP.write_text(digest)

    return build_then_stamp


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
