"""Bundle store in an S3-compatible bucket, same layout as the local store.

    <prefix>/<task_id>/<version>/.claim            {"content_hash": ...}: version reserved
    <prefix>/<task_id>/<version>/prepared/...      the bundle's files
    <prefix>/<task_id>/<version>/manifest.json     written last: the version is now visible
    <prefix>/<task_id>/latest                      {"version": n}, updated after the manifest

S3 has no rename, so a publish is made safe by ordering and conditional writes
(`If-None-Match: *`, create-only):

1. claim the next version number by creating its `.claim` object create-only; two
   publishers can never claim the same number;
2. upload every file;
3. create manifest.json create-only: the bundle becomes visible in one step, and an existing
   manifest is never overwritten, so a visible version never changes.

Readers trust only manifest-bearing versions, so they never see a partial bundle. A claimed
version without a manifest is an interrupted publish: publishing the same content again
(same content hash) resumes into it instead of taking a new number. The `latest` alias is a
convenience for tools that read the bucket directly; this module never trusts it.

Endpoint: `SANDFORGE_S3_ENDPOINT`, else `AWS_ENDPOINT_URL_S3` / `AWS_ENDPOINT_URL`, else AWS.
Credentials come from boto3's usual chain (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, a
profile, ...) and never appear in messages.
"""

from __future__ import annotations

import datetime as dt
import json
import mimetypes
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sandforge.storage.bundle import (
    MANIFEST,
    BundleError,
    canonical_json,
    content_hash,
    safe_task_id,
    sha256,
)
from sandforge.storage.signing import Signer, default_signer
from sandforge.storage.store import StoreError, safe_bundle_path, safe_object_name

CLAIM = ".claim"
ALIAS = "latest"
CLAIM_ATTEMPTS = 10  # optimistic concurrency: rescan and take the next number on a lost race
ENDPOINT_VARS = ("SANDFORGE_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 30.0
MAX_ATTEMPTS = 3  # total attempts per request, first one included (botocore "standard" mode)
MAX_POOL_CONNECTIONS = 32  # pulls download with up to this many threads on one client
BUCKET_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
CREDENTIAL_ERRORS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AuthorizationHeaderMalformed",
    "InvalidClientTokenId",
)


def endpoint_from_env() -> str | None:
    for var in ENDPOINT_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return None


def make_client(
    endpoint_url: str | None = None,
    *,
    connect_timeout: float = CONNECT_TIMEOUT,
    read_timeout: float = READ_TIMEOUT,
    max_attempts: int = MAX_ATTEMPTS,
) -> Any:
    """A boto3 S3 client with short connect timeouts and botocore's own bounded retries."""
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or endpoint_from_env()
    config = Config(
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": max_attempts, "mode": "standard"},
        max_pool_connections=MAX_POOL_CONNECTIONS,
        # a self-hosted endpoint (127.0.0.1:8333, a service name) has no per-bucket DNS
        s3={"addressing_style": "path"} if endpoint else {},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint,
        region_name=session.region_name or "us-east-1",
        config=config,
    )


class S3Store:
    """Bundles under `s3://<bucket>/<prefix>/`; see the module docstring for the protocol."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
    ):
        if not re.fullmatch(BUCKET_PATTERN, bucket) or ".." in bucket:
            raise BundleError(f"invalid S3 bucket name {bucket!r}")
        parts = [p for p in prefix.split("/") if p]
        if any(p in (".", "..") for p in parts):
            raise BundleError(f"invalid S3 prefix {prefix!r}")
        self.bucket = bucket
        self.prefix = "/".join(parts)
        self._base = f"{self.prefix}/" if self.prefix else ""
        self.client = client or make_client(
            endpoint_url, connect_timeout=connect_timeout, max_attempts=max_attempts
        )
        self.endpoint = self.client.meta.endpoint_url
        self._hashes: dict[tuple[str, int], str] = {}  # versions are immutable: safe to cache

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S3Store:
        """`s3://BUCKET[/PREFIX]`; endpoint and credentials come from the environment."""
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not url.startswith("s3://") or not bucket:
            raise BundleError(f"invalid S3 store URL {url!r}: expected s3://bucket[/prefix]")
        try:
            return cls(bucket, prefix, **kwargs)
        except BundleError as exc:
            raise BundleError(f"invalid S3 store URL {url!r}: {exc}") from None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"S3Store({self.url!r}, endpoint={self.endpoint!r})"

    def location(self, task_id: str, version: int) -> str:
        return f"{self.url}/{task_id}/{version}"

    # -- reading ---------------------------------------------------------------------------

    def versions(self, task_id: str) -> list[int]:
        complete, _, _ = self._scan(safe_task_id(task_id))
        return sorted(complete)

    def latest_versions(self) -> list[tuple[str, int]]:
        newest: dict[str, int] = {}
        for task_id, version in self.list_bundles():
            newest[task_id] = max(version, newest.get(task_id, 0))
        return sorted(newest.items())

    def list_bundles(self) -> list[tuple[str, int]]:
        found = []
        for key in self._keys(self._base, "listing bundles"):
            parts = key[len(self._base) :].split("/")
            complete = len(parts) == 3 and parts[2] == MANIFEST and _canonical_int(parts[1])
            if complete and _is_task_id(parts[0]):  # never hand out an unsafe id
                found.append((parts[0], int(parts[1])))
        return sorted(found)

    def read_manifest(self, task_id: str, version: int) -> dict[str, Any]:
        where = self.location(safe_task_id(task_id), version)
        data = self._get(self._key(task_id, version, MANIFEST))
        if data is None:
            raise BundleError(f"{where}: not a bundle (no {MANIFEST})")
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise BundleError(f"{where}/{MANIFEST}: not valid JSON: {exc}") from None

    def read_file(self, task_id: str, version: int, path: str) -> bytes:
        key = self._key(safe_task_id(task_id), version, safe_bundle_path(path))
        data = self._get(key)
        if data is None:
            raise FileNotFoundError(f"{self.location(task_id, version)}/{path}")
        return data

    # -- store objects ---------------------------------------------------------------------

    def get_object(self, name: str) -> tuple[bytes, str] | None:
        data, etag = self._get_object(self._base + safe_object_name(name))
        return None if data is None or etag is None else (data, etag)

    def put_object(
        self, name: str, data: bytes, *, if_match: str | None = None, create_only: bool = False
    ) -> bool:
        key = self._base + safe_object_name(name)
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return self._put(key, data, if_match=if_match, create_only=create_only, content_type=kind)

    def object_url(self, name: str) -> str:
        return f"s3://{self.bucket}/{self._base}{safe_object_name(name)}"

    def list_objects(self, folder: str) -> dict[str, str]:
        folder = folder.strip("/")
        safe_object_name(f"{folder}/-")  # a folder follows the rules of the names it holds
        prefix = f"{self._base}{folder}/"
        return {
            item["Key"][len(self._base) :]: item["ETag"]
            for item in self._listing(prefix, f"listing {folder}/")
        }

    def delete_object(self, name: str) -> None:
        key = self._base + safe_object_name(name)
        with self._errors(f"deleting {key}"):
            self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- publishing ------------------------------------------------------------------------

    def publish(
        self, manifest: dict[str, Any], files: dict[str, bytes], *, signer: Signer | None = None
    ) -> tuple[int, bool]:
        """Publish a bundle, signed; returns (version, created). Same content again is a
        no-op."""
        task_id = safe_task_id(manifest["task_id"])
        signer = signer or default_signer()  # a missing key fails before anything is written
        _check_consistent(manifest, files)
        version, complete = self._claim(task_id, manifest["content_hash"])
        if complete:
            self._update_alias(task_id)  # heals an alias a crash left behind
            return version, False
        self._upload(task_id, version, files)
        created = self._commit(task_id, version, signer.sign({**manifest, "version": version}))
        self._update_alias(task_id)
        return version, created

    def _claim(self, task_id: str, wanted: str) -> tuple[int, bool]:
        """(version, complete): the stored version with this content, an interrupted publish
        of it to resume, or a newly reserved number."""
        for _ in range(CLAIM_ATTEMPTS):
            complete, claimed, seen = self._scan(task_id)
            for version in sorted(complete):
                if self._content_hash(task_id, version) == wanted:
                    return version, True
            for version in sorted(claimed - complete):
                if self._claimed_hash(task_id, version) == wanted:
                    return version, False  # resume an interrupted publish of this content
            version = max(seen, default=0) + 1
            claim = canonical_json({"content_hash": wanted, "claimed_at": _now()})
            if self._put(self._key(task_id, version, CLAIM), claim, create_only=True):
                return version, False
        raise StoreError(
            f"{self.url}/{task_id}: could not reserve a version after {CLAIM_ATTEMPTS} attempts "
            "(too many concurrent publishers?)"
        )

    def _upload(self, task_id: str, version: int, files: dict[str, bytes]) -> None:
        # Overwrites on purpose: a resumed publish replaces whatever the interrupted one left.
        for path, data in files.items():
            self._put(self._key(task_id, version, path), data)

    def _commit(self, task_id: str, version: int, manifest: dict[str, Any]) -> bool:
        """Create manifest.json (signed, with its version) create-only; False if a concurrent
        publisher of the same content made it first."""
        body = canonical_json(manifest)
        key = self._key(task_id, version, MANIFEST)
        if self._put(key, body, create_only=True, content_type="application/json"):
            self._hashes[(task_id, version)] = manifest["content_hash"]
            return True
        if self._content_hash(task_id, version) != manifest["content_hash"]:
            raise StoreError(
                f"{self.location(task_id, version)}: another publisher committed different "
                "content to this version"
            )
        return False

    def _update_alias(self, task_id: str) -> None:
        """Point `latest` at the newest complete version; compare-and-swap on the alias's
        ETag, so concurrent publishers never move it backwards."""
        key = f"{self._base}{task_id}/{ALIAS}"
        for _ in range(CLAIM_ATTEMPTS):
            newest = max(self.versions(task_id), default=0)
            current, etag = self._get_object(key)
            if newest == 0 or (current is not None and _alias_version(current) >= newest):
                return
            body = canonical_json({"version": newest})
            condition = {"if_match": etag} if current is not None else {"create_only": True}
            if self._put(key, body, content_type="application/json", **condition):
                return
        raise StoreError(f"{self.url}/{task_id}/{ALIAS}: kept changing while being updated")

    def create_bucket(self) -> bool:
        """Create the bucket (for development); False if it already exists and is ours."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        region = self.client.meta.region_name
        if region and region != "us-east-1" and self.endpoint.endswith("amazonaws.com"):
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            with self._errors("creating the bucket", passthrough=ClientError):
                self.client.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                return False
            raise self._client_error(exc, "creating the bucket") from exc
        return True

    # -- S3 primitives ---------------------------------------------------------------------

    def _key(self, task_id: str, version: int, path: str) -> str:
        return f"{self._base}{task_id}/{version}/{path}"

    def _scan(self, task_id: str) -> tuple[set[int], set[int], set[int]]:
        """(complete, claimed, seen) version numbers of a task, from one listing."""
        complete: set[int] = set()
        claimed: set[int] = set()
        seen: set[int] = set()
        task_prefix = f"{self._base}{task_id}/"
        for key in self._keys(task_prefix, f"listing {task_id}"):
            head, _, rest = key[len(task_prefix) :].partition("/")
            if not rest or not _canonical_int(head):
                continue
            version = int(head)
            seen.add(version)
            if rest == MANIFEST:
                complete.add(version)
            elif rest == CLAIM:
                claimed.add(version)
        return complete, claimed, seen

    def _content_hash(self, task_id: str, version: int) -> str | None:
        if (task_id, version) not in self._hashes:
            self._hashes[(task_id, version)] = self.read_manifest(task_id, version).get(
                "content_hash"
            )
        return self._hashes[(task_id, version)]

    def _claimed_hash(self, task_id: str, version: int) -> str | None:
        data = self._get(self._key(task_id, version, CLAIM))
        try:
            return json.loads(data).get("content_hash") if data else None
        except (json.JSONDecodeError, AttributeError):
            return None

    def _keys(self, prefix: str, doing: str) -> Iterator[str]:
        for item in self._listing(prefix, doing):
            yield item["Key"]

    def _listing(self, prefix: str, doing: str) -> Iterator[dict[str, Any]]:
        with self._errors(doing):
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Contents", [])

    def _get(self, key: str) -> bytes | None:
        return self._get_object(key)[0]

    def _get_object(self, key: str) -> tuple[bytes | None, str | None]:
        """(body, ETag), or (None, None) when the key does not exist."""
        from botocore.exceptions import ClientError

        try:
            with self._errors(f"reading {key}", passthrough=ClientError):
                response = self.client.get_object(Bucket=self.bucket, Key=key)
                return response["Body"].read(), response.get("ETag")
        except ClientError as exc:
            if _code(exc) == "NoSuchKey":
                return None, None
            raise self._client_error(exc, f"reading {key}") from exc

    def _put(
        self,
        key: str,
        body: bytes,
        *,
        create_only: bool = False,
        if_match: str | None = None,
        content_type: str = "application/octet-stream",
    ) -> bool:
        """Write an object; False when a condition fails: with create_only, the key exists;
        with if_match, the object's ETag is no longer that one."""
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": key, "Body": body}
        kwargs["ContentType"] = content_type
        if create_only:
            kwargs["IfNoneMatch"] = "*"
        if if_match is not None:
            kwargs["IfMatch"] = if_match
        conditional = create_only or if_match is not None
        try:
            with self._errors(f"writing {key}", passthrough=ClientError):
                self.client.put_object(**kwargs)
        except ClientError as exc:
            # 412: the condition does not hold; 409: a concurrent conditional write won
            if conditional and _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return False
            raise self._client_error(exc, f"writing {key}") from exc
        return True

    @contextmanager
    def _errors(self, doing: str, passthrough: type[Exception] | None = None) -> Iterator[None]:
        """Turn botocore failures into StoreErrors naming the endpoint and bucket."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            HTTPClientError,
            NoCredentialsError,
            PartialCredentialsError,
        )
        from botocore.exceptions import ConnectionError as BotoConnectionError

        where = f"S3 endpoint {self.endpoint}, bucket {self.bucket!r}"
        try:
            yield
        except ClientError as exc:
            if passthrough is not None and isinstance(exc, passthrough):
                raise
            raise self._client_error(exc, doing) from exc
        except (BotoConnectionError, HTTPClientError) as exc:
            raise StoreError(f"{where}: cannot reach the endpoint while {doing}: {exc}") from exc
        except (NoCredentialsError, PartialCredentialsError) as exc:
            raise StoreError(
                f"{where}: no usable credentials ({exc}); set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from exc
        except BotoCoreError as exc:
            raise StoreError(f"{where}: {doing} failed: {exc}") from exc

    def _client_error(self, exc: Exception, doing: str) -> StoreError:
        code = _code(exc)
        where = f"S3 endpoint {self.endpoint}, bucket {self.bucket!r}"
        if code == "NoSuchBucket":
            return StoreError(
                f"{where}: the bucket does not exist (create it, e.g. S3Store.create_bucket())"
            )
        if code in CREDENTIAL_ERRORS:
            return StoreError(
                f"{where}: the credentials were rejected ({code}) while {doing}; check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            return StoreError(f"{where}: access denied while {doing} ({code})")
        message = getattr(exc, "response", {}).get("Error", {}).get("Message", "")
        return StoreError(f"{where}: {doing} failed: {code} {message}".rstrip())


def create_bucket(bucket: str, endpoint_url: str | None = None) -> bool:
    """Development helper: create `bucket` on the configured endpoint if it is missing."""
    return S3Store(bucket, endpoint_url=endpoint_url).create_bucket()


def _check_consistent(manifest: dict[str, Any], files: dict[str, bytes]) -> None:
    """Refuse to publish a bundle whose files or content hash disagree with its manifest."""
    if content_hash(manifest) != manifest.get("content_hash"):
        raise BundleError("manifest content_hash does not match its fields")
    listed = manifest.get("files", {})
    if set(listed) != set(files):
        missing, unlisted = sorted(set(listed) - set(files)), sorted(set(files) - set(listed))
        raise BundleError(
            f"files disagree with the manifest: missing {missing}, unlisted {unlisted}"
        )
    for path, data in files.items():
        if safe_bundle_path(path) == CLAIM:
            raise BundleError(f"bundle file path {path!r} is reserved")
        if sha256(data) != listed[path]["sha256"]:
            raise BundleError(f"{path}: sha256 differs from the manifest")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _alias_version(data: bytes) -> int:
    try:
        version = json.loads(data).get("version")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return 0  # a damaged alias gets rewritten
    return version if isinstance(version, int) else 0


def _is_task_id(text: str) -> bool:
    try:
        safe_task_id(text)
    except BundleError:
        return False
    return True


def _canonical_int(text: str) -> bool:
    return text.isdigit() and str(int(text)) == text


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
