"""A small Hub-compatible HTTP server for tests: what the real ``huggingface_hub`` client calls, nothing more.

The public Hub is unreachable from the test machines, so the publishing tests push to and pull
from this server with the real clients (``HfApi``, ``snapshot_download``, ``from_pretrained``,
``load_dataset``). It runs ``http.server`` in a thread, bound to 127.0.0.1 on a random port, and
keeps everything in memory: repositories with git-like history (blob ids are git blob SHA-1s,
commit ids SHA-1s of parent, tree and message), branches and pull-request refs.

Endpoints (as the client spells them; ``{type}`` is ``models``, ``datasets`` or ``spaces``):

* ``POST /api/validate-yaml`` (``upload_folder`` checks a README.md's metadata first);
* ``POST /api/repos/create``: a repository with an initial commit holding ``.gitattributes``
  (409 with the repo URL when it exists, which ``create_repo(exist_ok=True)`` accepts);
* ``GET /api/{type}/{id}`` and ``GET /api/{type}/{id}/revision/{rev}``: repo info (``sha``, ``siblings``);
* ``POST /api/{type}/{id}/preupload/{rev}``: every file is answered ``"regular"``, so the client
  sends contents inline in the commit (base64) and never needs LFS or Xet storage;
* ``POST /api/{type}/{id}/commit/{rev}``: the NDJSON commit (``file``, ``deletedFile``,
  ``deletedFolder``; ``lfsFile`` is refused since no LFS upload was offered), ``parentCommit`` checked;
* ``POST /api/{type}/{id}/branch/{branch}``, ``POST /api/{type}/{id}/discussions`` (pull requests,
  ref ``refs/pr/N``) and ``GET /api/{type}/{id}/discussions/{num}``;
* ``GET /api/{type}/{id}/tree/{rev}[/{path}]`` (``recursive``, ``expand``; paginated with a
  ``Link: <...>; rel="next"`` header and a ``cursor``) and ``POST /api/{type}/{id}/paths-info/{rev}``;
* ``HEAD``/``GET /{id}/resolve/{rev}/{path}`` and ``/datasets/{id}/resolve/...`` with ``ETag``
  (the git blob id), ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges`` and ``Range`` support.

Errors carry the ``X-Error-Code`` header the client maps to its exceptions (``RepoNotFound``,
``RevisionNotFound``, ``EntryNotFound``). Writes need an ``Authorization: Bearer`` header when the
server has a ``token``; private repos need it for reads too. ``fail(kind, status, times)`` makes
the next requests of a kind (``"commit"``, ``"preupload"``, ``"resolve"``...) fail, and
``requests`` records ``(method, path)`` of every request -- never headers, so no token is stored.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Optional
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
GITATTRIBUTES = b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n*.parquet filter=lfs diff=lfs merge=lfs -text\n"
FIXED_DATE = "2026-01-01T00:00:00.000Z"  # deterministic "lastModified"/"createdAt"


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Commit:
    oid: str
    parent: Optional[str]
    tree: dict  # path -> blob id
    title: str


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    blobs: dict = field(default_factory=dict)  # blob id -> bytes
    commits: dict = field(default_factory=dict)  # oid -> Commit
    refs: dict = field(default_factory=dict)  # "main", "refs/pr/1", ... -> commit oid
    discussions: list = field(default_factory=list)

    def commit(self, parent: Optional[str], tree: dict, title: str) -> str:
        listing = "\n".join(f"{path} {oid}" for path, oid in sorted(tree.items()))
        text = f"parent {parent}\ntree\n{listing}\ntitle {title}\nn {len(self.commits)}"
        oid = hashlib.sha1(text.encode()).hexdigest()
        self.commits[oid] = Commit(oid, parent, dict(tree), title)
        return oid

    def resolve(self, revision: str) -> Optional[Commit]:
        revision = revision[len("refs/heads/") :] if revision.startswith("refs/heads/") else revision
        if revision in self.refs:
            return self.commits[self.refs[revision]]
        matches = [c for oid, c in self.commits.items() if len(revision) >= 7 and oid.startswith(revision)]
        return matches[0] if len(matches) == 1 else None


class HttpError(Exception):
    def __init__(self, status: int, message: str, code: Optional[str] = None, headers: Optional[dict] = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class HubServer:
    """``with HubServer() as hub: hub.endpoint`` -- or ``start()``/``stop()``."""

    def __init__(self, token: Optional[str] = None, user: str = "xner-tester", page_size: int = 1000):
        self.token, self.user, self.page_size = token, user, page_size
        self.repos: dict[tuple[str, str], Repo] = {}
        self.requests: list[tuple[str, str]] = []
        self.authorized_requests = 0  # requests that carried the expected token
        self.ranges: list[str] = []  # Range headers of resolve requests
        self.validated_readmes: list[str] = []  # README.md texts upload_folder sent to /api/validate-yaml
        self._failures: dict[str, list] = {}
        self._connections: set = set()  # open client sockets: stop() closes them too
        self._lock = threading.RLock()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            # A keep-alive connection would otherwise go on being served by its handler thread:
            # a client holding one must see the server gone, not its old repositories.
            for connection in list(self._connections):
                try:
                    connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            self._thread.join(timeout=5)
            self._httpd = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ------------------------------------------------------------------ test helpers
    def fail(self, kind: str, status: int = 500, times: Optional[int] = None) -> None:
        """Answer the next ``times`` requests of ``kind`` (all of them when None) with ``status``."""
        with self._lock:
            self._failures[kind] = [status, times]

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def requests_of(self, kind: str) -> list[tuple[str, str]]:
        return [r for r in self.requests if _kind_of(r[1]) == kind]

    def repo(self, repo_id: str, repo_type: str = "model") -> Repo:
        return self.repos[(repo_type, repo_id)]

    def files(self, repo_id: str, repo_type: str = "model", revision: str = "main") -> dict[str, bytes]:
        repo = self.repo(repo_id, repo_type)
        commit = repo.resolve(revision)
        return {path: repo.blobs[oid] for path, oid in commit.tree.items()}

    def _take_failure(self, kind: str) -> Optional[int]:
        with self._lock:
            failure = self._failures.get(kind)
            if not failure:
                return None
            status, times = failure
            if times is not None:
                if times <= 0:
                    del self._failures[kind]
                    return None
                failure[1] = times - 1
            return status


def _kind_of(path: str) -> str:
    parts = urlsplit(path).path.strip("/").split("/")
    if parts[:2] == ["api", "repos"]:
        return "create"
    if parts[:2] == ["api", "validate-yaml"]:
        return "validate-yaml"
    if parts and parts[0] == "api" and len(parts) >= 5:
        return parts[4]  # api/{type}/{ns}/{name}/{kind}
    if parts and parts[0] == "api":
        return "info"
    return "resolve" if "resolve" in parts else "other"


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"
    server_version = "xner-test-hub/1.0"

    def setup(self):
        super().setup()
        self.hub._connections.add(self.connection)

    def finish(self):
        self.hub._connections.discard(self.connection)
        super().finish()

    def log_message(self, format, *args):  # quiet: pytest shows failures, not access logs
        pass

    # ------------------------------------------------------------------ plumbing
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        hub = self.hub
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        hub.requests.append((method, self.path))
        try:
            if hub.token is not None and self.headers.get("Authorization") == f"Bearer {hub.token}":
                hub.authorized_requests += 1
            status = hub._take_failure(_kind_of(self.path))
            if status is not None:
                raise HttpError(status, f"injected failure ({status})")
            with hub._lock:
                self._route(method, body)
        except HttpError as err:
            payload = json.dumps({"error": err.message, **err.headers.pop("_body", {})}).encode()
            headers = {"Content-Type": "application/json", **err.headers}
            if err.code:
                headers["X-Error-Code"] = err.code
                headers["X-Error-Message"] = err.message
            self._send(err.status, payload, headers, method)

    def _send(self, status: int, payload: bytes, headers: dict, method: str = "GET") -> None:
        self.send_response(status)
        headers = dict(headers)
        headers.setdefault("Content-Length", str(len(payload)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    def _json(self, value, status: int = 200, headers: Optional[dict] = None) -> None:
        self._send(status, json.dumps(value).encode(), {"Content-Type": "application/json", **(headers or {})})

    def _authorized(self) -> bool:
        return self.hub.token is None or self.headers.get("Authorization") == f"Bearer {self.hub.token}"

    def _require_write(self) -> None:
        if not self._authorized():
            raise HttpError(401, "Invalid credentials in Authorization header")

    def _repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.hub.repos.get((repo_type, repo_id))
        if repo is None or (repo.private and not self._authorized()):
            raise HttpError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return repo

    def _commit(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(revision)
        if commit is None:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def _base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def _repo_url(self, repo: Repo) -> str:
        return f"{self._base_url()}/{URL_PREFIX[repo.repo_type]}{repo.repo_id}"

    # ------------------------------------------------------------------ routing
    def _route(self, method: str, body: bytes) -> None:
        split = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        parts = split.path.strip("/").split("/")
        if parts[:3] == ["api", "repos", "create"] and method == "POST":
            return self._create_repo(json.loads(body or b"{}"))
        if parts[:2] == ["api", "validate-yaml"] and method == "POST":
            return self._validate_yaml(json.loads(body or b"{}"))
        if parts[0] == "api" and len(parts) >= 4 and parts[1] in REPO_TYPES:
            repo_type, repo_id, rest = REPO_TYPES[parts[1]], f"{parts[2]}/{parts[3]}", parts[4:]
            return self._api(method, repo_type, repo_id, rest, query, body)
        if parts[0] in ("datasets", "spaces"):
            repo_type, parts = REPO_TYPES[parts[0]], parts[1:]
        else:
            repo_type = "model"
        if len(parts) >= 5 and parts[2] == "resolve" and method in ("GET", "HEAD"):
            return self._resolve(
                method, repo_type, f"{parts[0]}/{parts[1]}", unquote(parts[3]), unquote("/".join(parts[4:]))
            )
        raise HttpError(404, f"no route for {method} {split.path}")

    def _api(self, method, repo_type, repo_id, rest, query, body) -> None:
        verb = rest[0] if rest else ""
        if method == "GET" and verb in ("", "revision"):
            revision = unquote(rest[1]) if verb == "revision" else "main"
            return self._info(self._repo(repo_type, repo_id), revision)
        if method == "POST" and verb == "preupload":
            self._require_write()
            return self._preupload(self._repo(repo_type, repo_id), unquote(rest[1]), json.loads(body))
        if method == "POST" and verb == "commit":
            self._require_write()
            return self._apply_commit(self._repo(repo_type, repo_id), unquote(rest[1]), body, query)
        if method == "POST" and verb == "branch":
            self._require_write()
            return self._create_branch(self._repo(repo_type, repo_id), unquote(rest[1]), json.loads(body or b"{}"))
        if method == "POST" and verb == "discussions":
            self._require_write()
            return self._create_discussion(self._repo(repo_type, repo_id), json.loads(body))
        if method == "GET" and verb == "discussions" and len(rest) == 2:
            return self._discussion(self._repo(repo_type, repo_id), int(rest[1]))
        if method == "GET" and verb == "tree":
            path = unquote("/".join(rest[2:])) if len(rest) > 2 else ""
            return self._tree(self._repo(repo_type, repo_id), unquote(rest[1]), path, query)
        if method == "POST" and verb == "paths-info":
            form = parse_qs(body.decode())
            return self._paths_info(
                self._repo(repo_type, repo_id),
                unquote(rest[1]),
                form.get("paths", []),
                form.get("expand", ["False"])[-1].lower() == "true",
            )
        raise HttpError(404, f"no API route for {method} {verb}")

    # ------------------------------------------------------------------ repos
    def _create_repo(self, payload: dict) -> None:
        self._require_write()
        repo_type = payload.get("type") or "model"
        repo_id = f"{payload.get('organization') or self.hub.user}/{payload['name']}"
        private = payload.get("visibility") == "private" or bool(payload.get("private"))
        existing = self.hub.repos.get((repo_type, repo_id))
        if existing is not None:
            raise HttpError(409, "You already created this repo", headers={"_body": {"url": self._repo_url(existing)}})
        repo = Repo(repo_type, repo_id, private)
        oid = git_blob_id(GITATTRIBUTES)
        repo.blobs[oid] = GITATTRIBUTES
        repo.refs["main"] = repo.commit(None, {".gitattributes": oid}, "initial commit")
        self.hub.repos[(repo_type, repo_id)] = repo
        self._json({"url": self._repo_url(repo), "name": repo_id, "id": repo_id})

    def _validate_yaml(self, payload: dict) -> None:
        """What ``upload_folder`` asks before uploading a README.md: is its YAML header a mapping?"""
        import yaml

        content = payload.get("content", "")
        errors = []
        match = re.match(r"^\s*---\r?\n([\s\S]*?)\r?\n---[ \t]*(\r?\n|$)", content)
        if match:
            try:
                if not isinstance(yaml.safe_load(match.group(1)) or {}, dict):
                    errors.append({"message": "the YAML metadata must be a mapping"})
            except yaml.YAMLError as err:
                errors.append({"message": f"invalid YAML: {err}"})
        self.hub.validated_readmes.append(content)
        self._json({"errors": errors, "warnings": []}, status=400 if errors else 200)

    def _info(self, repo: Repo, revision: str) -> None:
        commit = self._commit(repo, revision)
        info = {
            "_id": hashlib.sha1(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "lastModified": FIXED_DATE,
            "createdAt": FIXED_DATE,
            "tags": [],
            "siblings": [{"rfilename": path} for path in sorted(commit.tree)],
        }
        self._json(info)

    def _create_branch(self, repo: Repo, branch: str, payload: dict) -> None:
        if branch in repo.refs:
            raise HttpError(409, f"Branch {branch} already exists")
        start = self._commit(repo, payload.get("startingPoint") or "main")
        repo.refs[branch] = start.oid
        self._json({})

    def _create_discussion(self, repo: Repo, payload: dict) -> None:
        num = len(repo.discussions) + 1
        is_pr = bool(payload.get("pullRequest"))
        repo.discussions.append({"num": num, "title": payload.get("title", ""), "isPullRequest": is_pr})
        if is_pr:
            repo.refs[f"refs/pr/{num}"] = repo.refs["main"]
        self._json({"num": num, "url": f"{self._repo_url(repo)}/discussions/{num}"})

    def _discussion(self, repo: Repo, num: int) -> None:
        if not 1 <= num <= len(repo.discussions):
            raise HttpError(404, f"Discussion {num} not found")
        d = repo.discussions[num - 1]
        self._json(
            {
                "num": num,
                "title": d["title"],
                "status": "draft" if d["isPullRequest"] else "open",
                "isPullRequest": d["isPullRequest"],
                "createdAt": FIXED_DATE,
                "author": {"name": self.hub.user},
                "repo": {"name": repo.repo_id, "type": repo.repo_type},
                "events": [],
                "changes": {"base": "refs/heads/main"},
                "filesWithConflicts": [],
                "diff": "",
            }
        )

    # ------------------------------------------------------------------ uploads
    def _preupload(self, repo: Repo, revision: str, payload: dict) -> None:
        commit = repo.resolve(revision) or self._commit(repo, "main")
        files = []
        for item in payload.get("files", []):
            files.append(
                {
                    "path": item["path"],
                    "uploadMode": "regular",
                    "shouldIgnore": False,
                    "oid": commit.tree.get(item["path"]),
                }
            )
        self._json({"files": files, "commitOid": commit.oid})

    def _apply_commit(self, repo: Repo, revision: str, body: bytes, query: dict) -> None:
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HttpError(400, "the commit payload must start with a header line")
        header = lines[0]["value"]
        if query.get("create_pr") == "1":
            base = self._commit(repo, revision)
            num = len(repo.discussions) + 1
            repo.discussions.append({"num": num, "title": header.get("summary", ""), "isPullRequest": True})
            revision = f"refs/pr/{num}"
            repo.refs[revision] = base.oid
        if revision not in repo.refs and revision.removeprefix("refs/heads/") not in repo.refs:
            raise HttpError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        ref = revision.removeprefix("refs/heads/")
        head = repo.commits[repo.refs[ref]]
        parent = header.get("parentCommit")
        if parent and not head.oid.startswith(parent):
            raise HttpError(412, f"A commit has happened since: head is {head.oid}, not {parent}")
        tree = dict(head.tree)
        for line in lines[1:]:
            key, value = line["key"], line["value"]
            if key == "file":
                if value.get("encoding", "base64") != "base64":
                    raise HttpError(400, f"unsupported encoding {value.get('encoding')!r}")
                content = base64.b64decode(value["content"])
                oid = git_blob_id(content)
                repo.blobs[oid] = content
                tree[value["path"]] = oid
            elif key == "deletedFile":
                if tree.pop(value["path"], None) is None:
                    raise HttpError(404, f"{value['path']} does not exist", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in tree if p.startswith(prefix)]:
                    del tree[path]
            elif key == "lfsFile":
                raise HttpError(400, "LFS files are not supported: preupload answered 'regular' for every file")
            else:
                raise HttpError(400, f"unknown commit operation {key!r}")
        oid = repo.commit(head.oid, tree, header.get("summary", ""))
        repo.refs[ref] = oid
        pr_url = f"{self._repo_url(repo)}/discussions/{ref.split('/')[-1]}" if ref.startswith("refs/pr/") else None
        self._json(
            {
                "success": True,
                "commitOid": oid,
                "commitUrl": f"{self._repo_url(repo)}/commit/{oid}",
                "pullRequestUrl": pr_url,
            }
        )

    # ------------------------------------------------------------------ listings
    def _entries(self, repo: Repo, commit: Commit, expand: bool) -> dict[str, dict]:
        """Every file and folder of a commit, by path."""
        entries: dict[str, dict] = {}
        last_commit = {"id": commit.oid, "title": commit.title, "date": FIXED_DATE}
        for path, oid in commit.tree.items():
            entries[path] = {"type": "file", "oid": oid, "size": len(repo.blobs[oid]), "path": path}
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folder = "/".join(parts[:depth])
                entries.setdefault(folder, {"type": "directory", "size": 0, "path": folder})
        for folder, entry in entries.items():
            if entry["type"] == "directory":
                inside = sorted(f"{p} {o}" for p, o in commit.tree.items() if p.startswith(folder + "/"))
                entry["oid"] = hashlib.sha1("\n".join(inside).encode()).hexdigest()
            if expand:
                entry["lastCommit"] = last_commit
        return entries

    def _tree(self, repo: Repo, revision: str, path: str, query: dict) -> None:
        commit = self._commit(repo, revision)
        entries = self._entries(repo, commit, query.get("expand", "false").lower() == "true")
        path = path.strip("/")
        if path and entries.get(path, {}).get("type") != "directory":
            raise HttpError(
                404, f"{path} is not a folder at {revision}", "EntryNotFound", {"X-Repo-Commit": commit.oid}
            )
        prefix = path + "/" if path else ""
        recursive = query.get("recursive", "false").lower() == "true"
        listed = sorted(
            (e for p, e in entries.items() if p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])),
            key=lambda e: (e["type"] != "directory", e["path"]),
        )
        start = int(query.get("cursor") or 0)
        page = listed[start : start + self.hub.page_size]
        headers = {}
        if start + self.hub.page_size < len(listed):
            split = urlsplit(self.path)
            others = {k: v for k, v in parse_qs(split.query).items() if k != "cursor"}
            params = "&".join(f"{k}={quote(v[-1])}" for k, v in sorted(others.items()))
            next_url = f"{self._base_url()}{split.path}?{params}&cursor={start + self.hub.page_size}"
            headers["Link"] = f'<{next_url}>; rel="next"'
        self._json(page, headers=headers)

    def _paths_info(self, repo: Repo, revision: str, paths: list, expand: bool) -> None:
        commit = self._commit(repo, revision)
        entries = self._entries(repo, commit, expand)
        self._json([entries[p.strip("/")] for p in paths if p.strip("/") in entries])

    # ------------------------------------------------------------------ downloads
    def _resolve(self, method: str, repo_type: str, repo_id: str, revision: str, path: str) -> None:
        repo = self._repo(repo_type, repo_id)
        commit = self._commit(repo, revision)
        oid = commit.tree.get(path)
        if oid is None:
            raise HttpError(404, f"{path} not found at {revision}", "EntryNotFound", {"X-Repo-Commit": commit.oid})
        content = repo.blobs[oid]
        headers = {
            "Content-Type": "application/octet-stream",
            "ETag": f'"{oid}"',
            "X-Repo-Commit": commit.oid,
            "Accept-Ranges": "bytes",
        }
        status = 200
        byte_range = self.headers.get("Range")
        if byte_range:
            self.hub.ranges.append(byte_range)
        if byte_range and byte_range.startswith("bytes="):
            first, _, last = byte_range[len("bytes=") :].split(",")[0].partition("-")
            if first == "":  # suffix range: the last N bytes
                start, end = max(len(content) - int(last), 0), len(content) - 1
            else:
                start, end = int(first), (int(last) if last else len(content) - 1)
            end = min(end, len(content) - 1)
            if start > end:
                raise HttpError(416, "range not satisfiable", headers={"Content-Range": f"bytes */{len(content)}"})
            headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            content, status = content[start : end + 1], 206
        self._send(status, content, headers, method)


__all__ = ["HubServer", "git_blob_id"]
