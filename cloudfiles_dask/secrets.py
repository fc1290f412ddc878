"""Credentials: where they are looked up, in what order, and how they are kept out of sight.

Lookup of a secrets file NAME (:func:`secretpath`): ``$CLOUD_VOLUME_DIR/secrets/NAME`` (default
``~/.cloudvolume``), then ``/NAME`` (historical), then ``$CLOUD_FILES_DIR/secrets/NAME`` (default
``~/.cloudfiles``). A bucket-prefixed file ``BUCKET-NAME`` wins over ``NAME`` for that bucket.
An explicit ``secrets=`` argument always wins over every file and variable.

| service | files | fallback |
| --- | --- | --- |
| S3 | ``BUCKET-aws-secret.json``, ``aws-secret.json`` (alias ``X``: ``X-secret.json``) | ``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY`` (+ optional ``AWS_SESSION_TOKEN``), then boto3's own chain |
| GCS | ``BUCKET-google-secret.json``, ``google-secret.json`` (service account) | google default credentials |
| HTTP | ``http-secret.json`` (``{"user", "password"}``) | none |
| CAVE | ``SERVER-cave-secret.json``, ``cave-secret.json`` (``{"token"}``) | none |

Nothing here logs, prints or puts a secret in an exception message. A CloudFiles pickles its
``secrets`` argument only when the user gave one explicitly; files are read again in each process.

The directories are also module attributes, as in the original: :data:`CLOUD_VOLUME_DIR`,
:data:`CLOUD_FILES_DIR` (str), :data:`CLOUD_FILES_LOCK_DIR` (str, or None when
``$CLOUD_FILES_LOCK_DIR`` is unset), :data:`CLOUD_VOLUME_SECRETS_DIR` and
:data:`CLOUD_FILES_SECRETS_DIR`. Each is read from the environment when it is looked up, so it
always agrees with what the functions here use.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from ._dirs import cloud_files_dir, cloud_volume_dir, lock_dir_from_env

_DIRECTORIES = {
    "CLOUD_VOLUME_DIR": cloud_volume_dir,
    "CLOUD_FILES_DIR": cloud_files_dir,
    "CLOUD_FILES_LOCK_DIR": lock_dir_from_env,
    "CLOUD_VOLUME_SECRETS_DIR": lambda: os.path.join(cloud_volume_dir(), "secrets"),
    "CLOUD_FILES_SECRETS_DIR": lambda: os.path.join(cloud_files_dir(), "secrets"),
}

__all__ = [
    *_DIRECTORIES,
    "aws_credentials",
    "cave_credentials",
    "cave_token",
    "default_google_project_name",
    "fingerprint",
    "google_credentials",
    "google_service_account",
    "http_credentials",
    "normalize_aws",
    "parse_explicit",
    "read_secret_file",
    "secretpath",
]


def __getattr__(name: str) -> Any:
    """The directory constants, read from the environment at each lookup (PEP 562)."""
    try:
        return _DIRECTORIES[name]()
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_DIRECTORIES))


def secretpath(name: str) -> str:
    """The first existing location of secrets file ``name`` (else the preferred location)."""
    candidates = [
        os.path.join(cloud_volume_dir(), "secrets", name),
        os.path.join("/", name),
        os.path.join(cloud_files_dir(), "secrets", name),
    ]
    for path in candidates:
        if os.path.isfile(path):
            return path
    return candidates[0]


def read_secret_file(*names: str) -> dict | None:
    """The JSON object in the first of ``names`` that exists, or None."""
    for name in names:
        path = secretpath(name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
            except (OSError, ValueError) as e:
                raise ValueError(f"Cannot read the secrets file {path}: {type(e).__name__}") from None
            if not isinstance(data, dict):
                raise ValueError(f"The secrets file {path} must hold a JSON object")
            return data
    return None


def _prefixed(bucket: str | None, name: str) -> list[str]:
    return ([f"{bucket}-{name}"] if bucket else []) + [name]


def parse_explicit(secrets: Any) -> Any:
    """A JSON string given as ``secrets=`` becomes a dict; anything else is returned as is."""
    if isinstance(secrets, (str, bytes)):
        try:
            return json.loads(secrets)
        except ValueError:
            raise ValueError("secrets= was a string but not a JSON object") from None
    return secrets


def aws_credentials(bucket: str | None = None, service: str = "aws", skip_files: bool = False) -> dict:
    """``{AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY[, AWS_SESSION_TOKEN], AWS_DEFAULT_REGION}``,
    or ``{}`` to let boto3 find credentials itself (instance roles, ~/.aws, ...)."""
    name = "aws-secret.json" if service in ("aws", "s3") else f"{service}-secret.json"
    found = None if skip_files else read_secret_file(*_prefixed(bucket, name))
    if found is None:
        env = os.environ
        if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
            found = {
                "AWS_ACCESS_KEY_ID": env["AWS_ACCESS_KEY_ID"],
                "AWS_SECRET_ACCESS_KEY": env["AWS_SECRET_ACCESS_KEY"],
            }
            if env.get("AWS_SESSION_TOKEN"):
                found["AWS_SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
        else:
            found = {}
    return normalize_aws(found)


def normalize_aws(secrets: dict) -> dict:
    """Accept upper-case (file/env style) or boto3 lower-case key names."""
    out = {}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        value = secrets.get(key, secrets.get(key.lower()))
        if value:
            out[key] = value
    region = secrets.get("region_name") or os.environ.get("AWS_DEFAULT_REGION")
    out.setdefault("AWS_DEFAULT_REGION", region or "us-east-1")
    return out


def google_service_account(bucket: str | None = None) -> dict | None:
    """The service-account JSON for ``bucket`` from the secrets files, or None."""
    return read_secret_file(*_prefixed(bucket, "google-secret.json"))


def default_google_project_name() -> str | None:
    """The ``project_id`` of the default ``google-secret.json``, or None if there is none."""
    info = google_service_account(None)
    return info.get("project_id") if info else None


def google_credentials(bucket: str = "") -> tuple[str | None, Any]:
    """``(project_id, credentials)`` from the service account in ``BUCKET-google-secret.json``
    or ``google-secret.json``: google-auth ``service_account.Credentials`` (unscoped, as a
    google-cloud-storage client expects them). ``(None, None)`` when there is no such file, which
    leaves the choice to google's default credentials. ValueError (naming the file type, never
    the key) if the file does not hold a usable service account."""
    info = google_service_account(bucket or None)
    if info is None:
        return None, None
    from google.oauth2 import service_account

    try:
        credentials = service_account.Credentials.from_service_account_info(info)
    except Exception as e:  # the message could quote key material: name the type only
        raise ValueError(
            f"Cannot load the Google service account in a google-secret.json file: {type(e).__name__}"
        ) from None
    return info.get("project_id"), credentials


def http_credentials(bucket: str | None = None) -> dict | None:
    """``{"user", "password"}`` for HTTP basic auth from ``[BUCKET-]http-secret.json``, or None."""
    return read_secret_file(*_prefixed(bucket, "http-secret.json"))


def cave_credentials(server: str = "") -> dict | None:
    """The JSON object (``{"token": ...}``) of ``SERVER-cave-secret.json``, else of
    ``cave-secret.json``, or None when neither exists."""
    return read_secret_file(*_prefixed(server or None, "cave-secret.json"))


def cave_token(server: str | None = None) -> str | None:
    """The bearer token for a CAVE (``middleauth+https``) server, or None."""
    found = cave_credentials(server or "")
    return None if found is None else found.get("token")


def fingerprint(secrets: Any) -> str:
    """A stable, non-reversible key for caching clients by credentials (never the secret itself).

    Two different credentials for one bucket get two different clients; the same ones share."""
    if secrets is None:
        return "none"
    if isinstance(secrets, dict):
        material = json.dumps(secrets, sort_keys=True, default=str)
    else:  # a credentials object: identity is the best we can do without reading its secrets
        material = f"{type(secrets).__module__}.{type(secrets).__qualname__}:{id(secrets)}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]
