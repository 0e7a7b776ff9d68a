"""`kernelkit serve`: blobconverter's HTTP protocol on this machine, for teams that keep the real client.

POST /compile?version=V&no_cache=B[&dry=True], multipart form (name, myriad_shaves, myriad_params_advanced,
data_type, download_ir, zoo_type, use_zoo, a YAML `config` with model_optimizer_args, one file per model file):
200 with the blob's bytes, or 400 with JSON {exit_code, message, stderr, stdout}. GET /zoo_models: the local
zoo's names. Hostile input is expected: uploaded names are checked and never become paths outside a private
temp folder, the upload size (KERNELKIT_MAX_UPLOAD_BYTES) and compile time (KERNELKIT_SERVE_TIMEOUT) are
bounded, compiles run `jobs` at a time with at most KERNELKIT_SERVE_QUEUE requests waiting (503 beyond).
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from kernelkit.core.errors import KernelkitError

MAX_PARTS = 64
MAX_FIELD_BYTES = 64 * 1024          # a form field that is not a file (the YAML config included)
FIELDS = ("name", "myriad_shaves", "myriad_params_advanced", "data_type", "download_ir", "zoo_type", "use_zoo")
READ_TIMEOUT = 60.0                  # seconds a client may stall while sending


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)      # checked names -> bytes ("config" excluded)
    config: bytes | None = None


def check_name(name: str) -> str:
    """An uploaded file's name, refused unless plain (kernelkit.compat.conversion.plain_name)."""
    from kernelkit.compat.conversion import plain_name

    return plain_name(name, "uploaded file name", "multipart")


def _header_params(value: str, header: str) -> Message:
    message = Message()
    message[header] = value
    return message


def parse_multipart(content_type: str, body: bytes) -> Upload:
    """The form of a blobconverter request; KernelkitError (HTTP 400) for anything malformed or hostile."""
    if "\r" in content_type or "\n" in content_type:
        raise KernelkitError("the Content-Type header holds a line break", where="Content-Type")
    ctype = _header_params(content_type, "content-type")
    boundary = ctype.get_param("boundary")
    if ctype.get_content_type() != "multipart/form-data" or not isinstance(boundary, str) or \
            not 1 <= len(boundary) <= 200:
        raise KernelkitError(f"expected multipart/form-data with a boundary, got {content_type[:100]!r}",
                             where="Content-Type", hint="POST the form as blobconverter's client does")
    delimiter = b"--" + boundary.encode("latin-1", "replace")
    if not body.startswith(delimiter):
        raise KernelkitError("the body does not start with the multipart boundary", where="multipart")
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0][len(delimiter):]
    chunks[0] = first
    if not chunks[-1].startswith(b"--"):
        raise KernelkitError("the multipart body has no closing boundary (truncated?)", where="multipart")
    parts = chunks[:-1]
    if len(parts) > MAX_PARTS:
        raise KernelkitError(f"{len(parts)} form parts, above {MAX_PARTS}", where="multipart")
    upload = Upload()
    for number, chunk in enumerate(parts, 1):
        if not chunk.startswith(b"\r\n"):
            raise KernelkitError(f"form part {number}: no line break after the boundary", where="multipart")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep or len(head) > 8192:
            raise KernelkitError(f"form part {number}: no end of its headers", where="multipart")
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            key, colon, value = line.partition(":")
            if not colon:
                raise KernelkitError(f"form part {number}: header line {line[:60]!r}", where="multipart")
            headers[key.strip().lower()] = value.strip()
        disposition = _header_params(headers.get("content-disposition", ""), "content-disposition")
        if disposition.get_content_disposition() != "form-data":
            raise KernelkitError(f"form part {number} is not form-data", where="multipart")
        name = disposition.get_param("name", header="content-disposition")
        filename = disposition.get_filename()
        if not isinstance(name, str) or not name:
            raise KernelkitError(f"form part {number} has no name", where="multipart")
        if "\0" in name or len(name) > 512:
            raise KernelkitError(f"form part {number}: its name is not a plain file name", where="multipart")
        if name == "config":
            if len(data) > MAX_FIELD_BYTES:
                raise KernelkitError(f"the config is {len(data):,} bytes, above {MAX_FIELD_BYTES:,}", where="config")
            upload.config = data
        elif filename is None and name in FIELDS:
            if len(data) > MAX_FIELD_BYTES:
                raise KernelkitError(f"form field {name!r} is {len(data):,} bytes", where=name)
            upload.fields[name] = data.decode("utf-8", "replace")
        elif filename is None:
            raise KernelkitError(f"unknown form field {name[:60]!r}", where="multipart",
                                 hint=f"fields: {', '.join(FIELDS)}, config, and the model files")
        else:
            check_name(name)
            if filename != name:
                check_name(filename)
            if name in upload.files:
                raise KernelkitError(f"file {name!r} sent twice", where="multipart")
            upload.files[name] = data
    return upload


def _truth(text) -> bool:
    return str(text).strip().lower() in ("true", "1", "yes")


@dataclass
class Settings:
    cache_dir: Path | None
    zoo_dir: Path | None = None
    jobs: int = 1
    log: object = None              # a callable taking one line


class Service:
    """The protocol without the socket: one request in, (status, headers, body) out."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.slots = threading.BoundedSemaphore(max(1, settings.jobs))
        self.lock = threading.Lock()
        self.waiting = 0

    def zoo_models(self) -> tuple[int, dict, bytes]:
        from kernelkit.compat.blobconverter import zoo_names

        zoo = self.settings.zoo_dir
        names = zoo_names(zoo) if zoo is not None and zoo.is_dir() else []
        return _json(200, {"available": names})

    def enter(self) -> bool:
        """Admit one request (before its body is read, so at most jobs + KERNELKIT_SERVE_QUEUE uploads are held
        in memory at once); False when the queue is full."""
        from kernelkit.core.limits import SERVE_QUEUE

        with self.lock:
            if self.waiting >= SERVE_QUEUE.value() + self.settings.jobs:
                return False
            self.waiting += 1
            return True

    def leave(self) -> None:
        with self.lock:
            self.waiting -= 1

    def compile(self, query: str, content_type: str, body: bytes) -> tuple[int, dict, bytes]:
        """One admitted request: parsed, then compiled when one of the `jobs` slots is free."""
        try:
            request = self.prepare(query, content_type, body)
        except KernelkitError as exc:
            return _failure(exc)
        if request[0] == "dry":
            return _json(200, request[1])
        with self.slots:
            return self._run(*request[1:])

    def prepare(self, query: str, content_type: str, body: bytes):
        """Parse and check one POST /compile: ("dry", plan dict) or ("run", framework, plan, uploaded files,
        zoo files, use_cache). KernelkitError for anything malformed (the fuzzer's entry point)."""
        try:
            pairs = parse_qs(query, keep_blank_values=True, max_num_fields=16, errors="replace")
        except ValueError as exc:
            raise KernelkitError(f"query string: {exc}", where="/compile") from None
        params = {k: v[-1] for k, v in pairs.items()}
        return self._prepare(params, parse_multipart(content_type, body))

    def _prepare(self, params: dict, upload: Upload):
        from kernelkit.compat.blobconverter import zoo_entry
        from kernelkit.compat.conversion import make_plan
        from kernelkit.compat.miniyaml import loads

        unknown = sorted(set(params) - {"version", "no_cache", "dry"})
        if unknown:
            raise KernelkitError(f"unknown query parameter(s) {', '.join(unknown)}", where="/compile")
        f = upload.fields
        if _truth(f.get("download_ir", "False")):
            raise KernelkitError("download_ir is not offered: the IR is kernelkit's patched model",
                                 where="download_ir", hint="run `kernelkit patch MODEL -o FOLDER` for the IR")
        zoo_args = None
        if upload.config is not None:
            config = loads(upload.config.decode("utf-8", "replace"), source="config")
            if not isinstance(config, dict):
                raise KernelkitError("the config is not a YAML mapping", where="config")
            framework = str(config.get("framework") or "")
            args = config.get("model_optimizer_args") or []
            for entry in config.get("files") or []:
                source = entry.get("source") if isinstance(entry, dict) else None
                url = source.get("url") if isinstance(source, dict) else source
                if isinstance(url, str) and not url.startswith("$REQUEST/"):
                    raise KernelkitError(f"the config names a file to download ({url[:100]}); kernelkit serve "
                                         "converts offline", where="config", hint="send the file with the request")
        elif _truth(f.get("use_zoo", "False")):
            if self.settings.zoo_dir is None:
                raise KernelkitError("this server has no local zoo", where="use_zoo",
                                     hint="start it with `kernelkit serve --zoo FOLDER`")
            framework, zoo_files, zoo_args = zoo_entry(self.settings.zoo_dir, f.get("name", ""))
            args = zoo_args
        else:
            raise KernelkitError("the request has no config", where="config",
                                 hint="send the model's YAML description as the form file `config`")
        if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
            raise KernelkitError("model_optimizer_args is not a list of strings", where="config")
        plan = make_plan(version=params.get("version", "2022.1"), shaves=f.get("myriad_shaves", "4"),
                         data_type=f.get("data_type", "FP16"), optimizer_params=args,
                         compile_params=[f.get("myriad_params_advanced", "")])
        if _truth(params.get("dry", "False")):
            return ("dry", {"framework": framework, "plan": plan.key_fields(), "notes": plan.notes})
        if zoo_args is not None:
            return ("run", framework, plan, {}, zoo_files, not _truth(params.get("no_cache", "False")))
        return ("run", framework, plan, upload.files, {}, not _truth(params.get("no_cache", "False")))

    def _run(self, framework, plan, uploaded: dict[str, bytes], local: dict[str, Path], use_cache: bool):
        from kernelkit.compat.conversion import convert
        from kernelkit.core.fsutil import named_file
        from kernelkit.core.limits import SERVE_COMPILE_SECONDS

        try:
            with tempfile.TemporaryDirectory(prefix="kernelkit-serve-") as tmp:
                files = dict(local)
                for name, data in uploaded.items():
                    if named_file(tmp, check_name(name), source=None, where="multipart", what="uploaded file",
                                  missing_ok=True) is not None:
                        raise KernelkitError(f"file {name!r} sent twice", where="multipart")
                    path = Path(tmp) / name
                    path.write_bytes(data)
                    files[name] = path
                result = convert(files, framework, plan, cache_dir=self.settings.cache_dir, use_cache=use_cache,
                                 timeout=float(SERVE_COMPILE_SECONDS.value()))
        except KernelkitError as exc:
            return _failure(exc)
        headers = {"Content-Type": "application/octet-stream",
                   "X-Kernelkit-Cache": "hit" if result.cached else "miss"}
        if result.notes:
            headers["Warning"] = ", ".join(f'199 kernelkit "{note}"' for note in result.notes)
        if self.settings.log and result.notes:
            for note in result.notes:
                self.settings.log(f"note: {note}")
        return 200, headers, result.blob


def _json(status: int, payload: dict) -> tuple[int, dict, bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


def _failure(exc: Exception) -> tuple[int, dict, bytes]:
    from kernelkit.myriad.compile import CompileFailed

    stderr = getattr(exc, "plugin_text", "") or ""
    code = 1 if isinstance(exc, CompileFailed) else 2
    return _json(400, {"exit_code": code, "message": str(exc), "stderr": stderr, "stdout": ""})


class _Handler(BaseHTTPRequestHandler):
    server_version = "kernelkit-serve"
    protocol_version = "HTTP/1.1"
    timeout = READ_TIMEOUT

    def log_message(self, format, *args):          # noqa: A002 - BaseHTTPRequestHandler's signature
        log = self.server.service.settings.log
        if log:
            log(f"{self.address_string()} {format % args}")

    def _send(self, status: int, headers: dict, body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value.replace("\r", " ").replace("\n", " "))
        self.send_header("Content-Length", str(len(body)))
        if status >= 400:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):                               # noqa: N802 - http.server's naming
        url = urlsplit(self.path)
        if url.path.rstrip("/") == "/zoo_models":
            return self._send(*self.server.service.zoo_models())
        return self._send(*_json(404, {"exit_code": 2, "message": f"no such resource {url.path[:100]}",
                                       "stderr": "", "stdout": ""}))

    def do_POST(self):                              # noqa: N802
        from kernelkit.core.limits import UPLOAD_BYTES

        url = urlsplit(self.path)
        if url.path.rstrip("/") != "/compile":
            return self._send(*_json(404, {"exit_code": 2, "message": f"no such resource {url.path[:100]}",
                                           "stderr": "", "stdout": ""}))
        length_text = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") or length_text is None or not length_text.strip().isdigit():
            return self._send(*_json(411, {"exit_code": 2, "message": "send a Content-Length (no chunked bodies)",
                                           "stderr": "", "stdout": ""}))
        length = int(length_text)
        try:
            UPLOAD_BYTES.check(length, "the upload", where="POST /compile")
        except KernelkitError as exc:
            status, headers, body = _failure(exc)
            return self._send(413, headers, body)
        service = self.server.service
        if not service.enter():
            return self._send(*_json(503, {"exit_code": 2, "message": "kernelkit serve is busy: the compile queue "
                                           "is full (KERNELKIT_SERVE_QUEUE)", "stderr": "", "stdout": ""}))
        try:
            try:
                body = self.rfile.read(length)
            except (TimeoutError, OSError):
                body = b""
            if len(body) != length:              # the client stalled or went away
                self.close_connection = True
                return None
            return self._send(*service.compile(url.query, self.headers.get("Content-Type", ""), body))
        finally:
            service.leave()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address, service: Service):
        self.service = service
        super().__init__(address, _Handler)


def make_server(host: str = "127.0.0.1", port: int = 8000, *, cache_dir=None, zoo_dir=None, jobs: int = 1,
                log=None) -> Server:
    """A server bound to (host, port) (port 0: any free port, see `.server_address`); call serve_forever()."""
    settings = Settings(Path(cache_dir) if cache_dir is not None else None,
                        Path(zoo_dir) if zoo_dir is not None else None, jobs, log)
    try:
        return Server((host, port), Service(settings))
    except OSError as exc:
        raise KernelkitError(f"cannot listen on {host}:{port}: {exc.strerror}", where="--host/--port",
                             hint="pick another port (--port) or stop what listens there") from None


def log_to_stderr(line: str) -> None:
    print(f"kernelkit serve: {line}", file=sys.stderr, flush=True)
