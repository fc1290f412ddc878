"""S3's data path without botocore: SigV4-signed requests over the lean HTTP/1.1 client.

A small request through botocore spends most of its CPU under the GIL building, hooking,
signing and parsing request objects, which caps a process's small requests per second. Here a
request is a few string operations, two HMAC-SHA256 calls and one ``sendall``/``recv`` pair on
the calling thread over :mod:`._http1`'s keep-alive connections (docs/performance.md has the
measured cost against botocore and obstore). The S3 backend sends its
whole-object GETs (large ones as parallel ranges), HEADs, PUTs (single and multipart parts)
and listing pages this way; botocore keeps the rest.

What it does, and only that:

- SigV4 in the ``Authorization`` header, as AWS documents it: every header sent is signed;
  the signing key is derived once per day; a session token goes in ``x-amz-security-token``.
  Request bodies are not hashed for the signature (``UNSIGNED-PAYLOAD``): single PUTs carry
  ``Content-MD5``, which every S3 server checks (rclone ignores a wrong signed SHA-256 but
  refuses a wrong MD5), and parts are checked against the md5 ETag the server answers (see
  ``S3Backend._part_job``). Unsigned requests (public buckets) carry no
  authentication at all.
- Addressing: an explicit endpoint is path-style (``ENDPOINT/BUCKET/KEY``). On AWS itself the
  endpoint is the one botocore resolves (so ``AWS_ENDPOINT_URL_S3`` and the config file's
  settings apply); a plain regional endpoint is used virtual-hosted
  (``https://BUCKET.s3.REGION.amazonaws.com/KEY``) for bucket names that are DNS labels
  without dots, path-style otherwise; any other (a custom, FIPS or dual-stack endpoint) leaves
  every call to botocore. The region must be the bucket's: unlike botocore, this path does not
  follow region redirects (the error names the bucket's region when the service says it).
- Keys are sent percent-encoded byte for byte (``/`` kept), as botocore sends them: any key
  botocore can carry, this can.
- Connections: one pool per process and origin, shared by every backend using it, made again
  in a forked child (it never reuses the parent's sockets or locks); the environment's proxy
  and CA bundle (``AWS_CA_BUNDLE`` first) apply. Plain sockets, so gevent's monkey-patching makes
  them cooperative like any other.
- Nothing retries here: an answer other than 2xx becomes :class:`Answer` (status, S3 error
  code and message), which the backend classifies and the engine retries when transient.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
import threading
import time
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit

from .. import _retry
from . import _http1

MODES = ("auto", "sdk")
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
USER_AGENT = "cloudfiles-dask"
_DNS_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_XML_FIELD = re.compile(rb"<(Code|Message|Region)>([^<]*)</")


def mode() -> str:
    """The S3 transport asked for by ``CLOUD_FILES_TRANSPORT`` (checked): ``auto`` (the default:
    this lean path where it can serve a call) or ``sdk`` (botocore for everything)."""
    value = os.environ.get("CLOUD_FILES_TRANSPORT", "auto").strip().lower() or "auto"
    if value not in MODES:
        raise ValueError(f"CLOUD_FILES_TRANSPORT must be one of {', '.join(MODES)}, got {value!r}")
    return value


def botocore_mocked() -> bool:
    """True while moto's in-process mock (``mock_aws``, ``mock_s3``) intercepts botocore's
    requests. Every S3 request must then go through botocore, into the mock: this lean path
    would go around it, to the network (to AWS itself, on a machine that has one)."""
    models = sys.modules.get("moto.core.models")
    stubber = getattr(models, "botocore_stubber", None)
    return bool(getattr(stubber, "enabled", False))


def mock_botocore_client(client: Any) -> None:
    """Make sure moto's mock sees ``client``'s requests: a client made from a botocore session
    created before moto was imported lacks the handler moto adds to every new session."""
    from moto.core import patch_client  # only ever called while moto is imported and active

    patch_client(client)


class Answer(Exception):
    """The service answered a request with an HTTP status other than 2xx."""

    def __init__(self, status: int, code: str = "", message: str = "", region: str = ""):
        super().__init__(f"HTTP {status} {code}".rstrip() + (f": {message}" if message else ""))
        self.status = status
        self.code = code
        self.message = message
        self.region = region  # the bucket's region, where the service named it

    def __reduce__(self):
        return type(self), (self.status, self.code, self.message, self.region)


def answer_error(resp: _http1.Response) -> Answer:
    """The :class:`Answer` for a non-2xx response (its body, an S3 XML error, is read here;
    HEAD answers have none)."""
    try:
        data = resp.read() if resp.data == b"" else resp.data
    except OSError:
        data = b""
    fields = {name.decode(): value.decode("utf-8", "replace")
              for name, value in _XML_FIELD.findall(data[:4096])}
    region = resp.headers.get("x-amz-bucket-region") or fields.get("Region", "")
    return Answer(resp.status, fields.get("Code", ""), fields.get("Message", ""), region)


class Signer:
    """SigV4 ``Authorization`` headers for one set of credentials, region and service."""

    def __init__(self, access_key: str, secret_key: str, region: str,
                 session_token: str | None = None, service: str = "s3"):
        self._access_key = access_key
        self._secret = ("AWS4" + secret_key).encode()
        self._token = session_token
        self.region = region
        self.service = service
        self._cached = ("", b"")  # (day, signing key): one tuple, so threads read a pair
        self._stamp = (-1, "")  # (second, its x-amz-date): most requests share a second

    def __repr__(self) -> str:  # never the secret
        return f"Signer(region={self.region!r}, service={self.service!r})"

    def _signing_key(self, day: str) -> bytes:
        cached_day, key = self._cached
        if day != cached_day:
            key = hmac.digest(self._secret, day.encode(), "sha256")
            for part in (self.region, self.service, "aws4_request"):
                key = hmac.digest(key, part.encode(), "sha256")
            self._cached = (day, key)
        return key

    def sign(self, method: str, path: str, query: str, headers: dict[str, str],
             payload_hash: str = UNSIGNED_PAYLOAD, now: float | None = None) -> None:
        """Add ``x-amz-date``, ``x-amz-content-sha256`` (and the session token) to ``headers``,
        sign every header in it, and add ``Authorization``. ``headers`` must hold ``host``;
        ``path`` and ``query`` are exactly as sent (encoded; the query's pairs sorted)."""
        second = int(time.time() if now is None else now)
        cached_second, stamp = self._stamp
        if second != cached_second:
            stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            self._stamp = (second, stamp)
        day = stamp[:8]
        headers["x-amz-date"] = stamp
        headers["x-amz-content-sha256"] = payload_hash
        if self._token:
            headers["x-amz-security-token"] = self._token
        canonical = sorted((name.lower(), " ".join(str(value).split()))
                           for name, value in headers.items())
        signed = ";".join(name for name, _ in canonical)
        request = "\n".join((method, path, query,
                             "".join(f"{name}:{value}\n" for name, value in canonical),
                             signed, payload_hash))
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = (f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n"
                   f"{hashlib.sha256(request.encode()).hexdigest()}")
        signature = hmac.digest(self._signing_key(day), to_sign.encode(), "sha256").hex()
        headers["Authorization"] = (f"AWS4-HMAC-SHA256 Credential={self._access_key}/{scope}, "
                                    f"SignedHeaders={signed}, Signature={signature}")


def canonical_query(params: dict[str, str | int]) -> str:
    """A query string in SigV4's canonical form (names sorted, everything but unreserved
    characters percent-encoded), which is also what is sent."""
    return "&".join(f"{quote(str(name), safe='~')}={quote(str(value), safe='~')}"
                     for name, value in sorted(params.items()))


def list_page(data: bytes) -> dict:
    """A ListObjectsV2 answer in botocore's shape: ``Contents`` (``Key``, ``Size``),
    ``CommonPrefixes`` (``Prefix``), ``IsTruncated``, ``NextContinuationToken``. Names are
    decoded when the server says it URL-encoded them (``EncodingType``; we ask for it, so that
    keys XML cannot carry survive), as form data: AWS and rclone send a space as ``+``. An
    answer that is not a ListObjectsV2 page raises ValueError (not retried: it will not
    change)."""
    from xml.etree import ElementTree

    try:
        root = ElementTree.fromstring(data)
    except ElementTree.ParseError as e:
        raise ValueError(f"the listing is not valid XML ({e}): {data[:80]!r}") from e
    ns = root.tag[:root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    if root.tag[len(ns):] != "ListBucketResult":
        raise ValueError(f"the answer is not a listing but <{root.tag[len(ns):]}>: {data[:80]!r}")
    decode = unquote_plus if root.findtext(ns + "EncodingType") == "url" else str
    key, size, prefix = ns + "Key", ns + "Size", ns + "Prefix"
    page: dict = {
        "Contents": [{"Key": decode(item.findtext(key) or ""), "Size": int(item.findtext(size) or 0)}
                     for item in root.iterfind(ns + "Contents")],
        "IsTruncated": root.findtext(ns + "IsTruncated") == "true",
        "NextContinuationToken": root.findtext(ns + "NextContinuationToken"),
    }
    dirs = [{"Prefix": decode(item.findtext(prefix) or "")}
            for item in root.iterfind(ns + "CommonPrefixes")]
    if dirs:
        page["CommonPrefixes"] = dirs
    return page


def address(endpoint: str, bucket: str) -> tuple[str, str]:
    """``(origin, path prefix of every key)`` for a bucket on an explicit endpoint
    (path-style)."""
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{parts.netloc}", f"{parts.path.rstrip('/')}/{quote(bucket, safe='')}/"


_AWS_HOST = re.compile(r"s3\.(?:([a-z0-9-]+)\.)?(amazonaws\.com(?:\.cn)?)")


def aws_address(endpoint_url: str, bucket: str, region: str) -> tuple[str, str] | None:
    """``(origin, path prefix)`` for a bucket on AWS, given the endpoint botocore resolved for
    the region (which follows ``AWS_ENDPOINT_URL_S3``, the config file, FIPS, dual-stack and
    partition settings): virtual-hosted where the bucket name is a DNS label without dots,
    path-style otherwise. None for anything but a plain regional (or the global) S3 endpoint:
    then botocore serves every call, so that one backend never splits across two services."""
    parts = urlsplit(endpoint_url)
    found = _AWS_HOST.fullmatch(parts.hostname or "")
    if (parts.scheme != "https" or parts.port or parts.path.strip("/") or found is None
            or found.group(1) not in (region, None if region == "us-east-1" else "")):
        return None
    host = parts.hostname
    if _DNS_BUCKET.match(bucket):
        return f"https://{bucket}.{host}", "/"
    return f"https://{host}", f"/{quote(bucket, safe='')}/"


_POOLS: dict[tuple[int, str], _http1.Pool] = {}
_POOLS_LOCK = threading.Lock()


def _pool(origin: str, size: int) -> _http1.Pool:
    """This process's pool for ``origin``, holding at least ``size`` idle connections."""
    key = (os.getpid(), origin)
    pool = _POOLS.get(key)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                for stale in [k for k in _POOLS if k[0] != key[0]]:  # inherited over fork
                    del _POOLS[stale]
                pool = _POOLS[key] = _http1.pool_for(origin, size, os.environ.get("AWS_CA_BUNDLE"))
    if pool.size < size:
        pool.size = size
    return pool


class Wire:
    """Signed requests for the objects of one bucket, in one process."""

    def __init__(self, origin: str, prefix: str, region: str, creds: dict | None, payer: bool,
                 pool_size: int):
        self.prefix = prefix
        self.pool = _pool(origin, pool_size)
        self.host = urlsplit(origin).netloc
        self.signer = None if creds is None else Signer(
            creds["AWS_ACCESS_KEY_ID"], creds["AWS_SECRET_ACCESS_KEY"], region,
            creds.get("AWS_SESSION_TOKEN"))
        self.base: dict[str, str] = {"host": self.host, "User-Agent": USER_AGENT}
        if payer:
            self.base["x-amz-request-payer"] = "requester"

    def __repr__(self) -> str:
        return f"Wire({self.host!r}, prefix={self.prefix!r})"

    def request(self, method: str, key: str, headers: dict[str, str] | None = None,
                body: _http1.Body = None, query: dict[str, str | int] | None = None,
                stream: bool = False) -> _http1.Response:
        """Send one request for ``key`` and return the answer, whatever its status (the body
        unread when ``stream``: read it, or release it)."""
        path = self.prefix + quote(key, safe="/~")
        query_text = canonical_query(query) if query else ""
        sent = {**self.base, **headers} if headers else dict(self.base)
        if self.signer is not None:
            self.signer.sign(method, path, query_text, sent)
        del sent["host"]  # the pool writes its own Host line (the same value)
        target = f"{path}?{query_text}" if query_text else path
        return self.pool.request(method, target, sent, body, _retry.timeouts(), stream)


def _forget_pools_after_fork() -> None:
    global _POOLS_LOCK
    _POOLS_LOCK = threading.Lock()  # a parent thread may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pools_after_fork)
