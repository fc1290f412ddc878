"""The lean S3 path (``backends._s3wire``): SigV4 signatures checked against AWS's documented
example and against botocore's own signer, addressing, error answers, and the requests a call
sends to a real server (rclone checks every signature)."""

# ruff: noqa: F811  (pytest fixtures imported from tests.conftest_s3 are parameters here)

from __future__ import annotations

import calendar
import datetime
import hashlib
from urllib.parse import quote

import pytest

from cloudfiles_dask import CloudFiles
from cloudfiles_dask.backends import _http1, _s3wire
from cloudfiles_dask.exceptions import AuthorizationError
from tests.conftest_s3 import rclone_server, s3_env, wire_seen  # noqa: F401 (fixtures)

AKID, SECRET = "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def test_signature_of_aws_documented_example():
    """AWS's SigV4 example for S3: GET /test.txt with a Range, on 2013-05-24."""
    signer = _s3wire.Signer(AKID, SECRET, "us-east-1")
    headers = {"host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9"}
    signer.sign("GET", "/test.txt", "", headers, EMPTY_SHA256,
                now=calendar.timegm((2013, 5, 24, 0, 0, 0)))
    assert headers["Authorization"] == (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, "
        "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, "
        "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")


CASES = [
    ("GET", "plain/key.bin", {}, {}, None),
    ("HEAD", "a b/ü+%=&?#~.txt", {"If-Match": '"abc  def"'}, {}, None),
    ("PUT", "parts/x", {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "Content-Type": "text/csv",
                        "x-amz-meta-cfdask-crc32c": "AAAAAA=="},
     {"partNumber": 3, "uploadId": "a/b+c=d~e f"}, "session-token/with+chars="),
    ("POST", "k", {}, {"uploads": ""}, None),
]


@pytest.mark.parametrize("method,key,headers,query,token", CASES)
def test_signature_matches_botocore(monkeypatch, method, key, headers, query, token):
    """botocore's S3 signer, an independent implementation, signs the same request the same."""
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = datetime.datetime(2026, 12, 6, 1, 2, 3)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *a, **k: when)
    host = "bkt.s3.eu-west-3.amazonaws.com"
    path = "/" + quote(key, safe="/~")
    query_text = _s3wire.canonical_query(query)
    url = f"https://{host}{path}" + (f"?{query_text}" if query_text else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=b"")
    request.context["payload_signing_enabled"] = False
    botocore.auth.S3SigV4Auth(Credentials(AKID, SECRET, token), "s3", "eu-west-3").add_auth(request)
    payload = request.headers["X-Amz-Content-SHA256"]  # UNSIGNED-PAYLOAD, or an empty body's

    ours = {"host": host, **headers}
    _s3wire.Signer(AKID, SECRET, "eu-west-3", token).sign(
        method, path, query_text, ours, payload, now=calendar.timegm(when.timetuple()))
    assert ours["Authorization"] == request.headers["Authorization"]
    if token:
        assert ours["x-amz-security-token"] == token


def test_addressing():
    assert _s3wire.address("http://127.0.0.1:9000", "bkt") == ("http://127.0.0.1:9000", "/bkt/")
    assert _s3wire.address("https://s3.example.org/base/", "b.k.t") == (
        "https://s3.example.org", "/base/b.k.t/")
    # AWS, from the endpoint botocore resolved: virtual-hosted where the name is a DNS label
    # without dots, path-style otherwise
    aws = _s3wire.aws_address
    assert aws("https://s3.eu-west-3.amazonaws.com", "my-bucket", "eu-west-3") == (
        "https://my-bucket.s3.eu-west-3.amazonaws.com", "/")
    assert aws("https://s3.eu-west-3.amazonaws.com", "my.bucket", "eu-west-3") == (
        "https://s3.eu-west-3.amazonaws.com", "/my.bucket/")
    assert aws("https://s3.amazonaws.com", "my-bucket", "us-east-1") == (
        "https://my-bucket.s3.amazonaws.com", "/")
    assert aws("https://s3.cn-north-1.amazonaws.com.cn", "b-1", "cn-north-1") == (
        "https://b-1.s3.cn-north-1.amazonaws.com.cn", "/")
    assert aws("https://s3.us-east-1.amazonaws.com", "Upper_Case", "us-east-1")[1] == "/Upper_Case/"
    # anything else is botocore's alone: custom, FIPS, dual-stack, another region's endpoint
    for url, region in [("http://127.0.0.1:9000", "us-east-1"),
                        ("https://s3-fips.us-east-1.amazonaws.com", "us-east-1"),
                        ("https://s3.dualstack.us-east-1.amazonaws.com", "us-east-1"),
                        ("https://s3.amazonaws.com", "eu-west-1"),
                        ("https://s3.eu-west-1.amazonaws.com", "us-east-1"),
                        ("https://s3.us-east-1.amazonaws.com:8443", "us-east-1"),
                        ("https://minio.example.org", "us-east-1")]:
        assert aws(url, "bkt", region) is None, url


def test_configured_aws_endpoint_keeps_a_backend_on_one_service(rclone_server, s3_env, monkeypatch):
    """``AWS_ENDPOINT_URL_S3`` redirects botocore for an ``s3://bucket`` path without an
    endpoint: the data path must not go to AWS meanwhile, but follow (here: botocore does it
    all)."""
    bucket = rclone_server.new_bucket()
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", rclone_server.endpoint)
    cf = CloudFiles(f"s3://{bucket}/r")
    assert cf.backend._wire() is None
    cf.put("k", b"routed", compress=None)
    assert cf.get("k") == b"routed" and cf.exists("k") and list(cf.list()) == ["k"]
    assert rclone_server.admin().get_object(Bucket=bucket, Key="r/k")["Body"].read() == b"routed"


def test_transport_mode_is_checked(monkeypatch):
    monkeypatch.setenv("CLOUD_FILES_TRANSPORT", "SDK ")
    assert _s3wire.mode() == "sdk"
    monkeypatch.setenv("CLOUD_FILES_TRANSPORT", "obstore")
    with pytest.raises(ValueError, match="one of auto, sdk, got 'obstore'"):
        _s3wire.mode()


def test_error_answers_are_parsed():
    resp = _http1.Response(301, {"x-amz-bucket-region": "eu-west-3"})
    resp.data = (b'<?xml version="1.0"?><Error><Code>PermanentRedirect</Code>'
                 b"<Message>Use the right endpoint</Message></Error>")
    error = _s3wire.answer_error(resp)
    assert (error.status, error.code, error.message, error.region) == (
        301, "PermanentRedirect", "Use the right endpoint", "eu-west-3")
    assert str(error) == "HTTP 301 PermanentRedirect: Use the right endpoint"
    from cloudfiles_dask.backends import s3

    translated = s3._translate(error, "get", "s3://bkt/k")
    assert "region eu-west-3" in str(translated) and "AWS_DEFAULT_REGION" in str(translated)


LIST_PAGE = """<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult{ns}><Name>b</Name><Prefix>r%2F</Prefix>{encoding}<KeyCount>2</KeyCount>
<IsTruncated>{truncated}</IsTruncated>{token}
<Contents><Key>r/a+b%2Bc%20d</Key><Size>12</Size></Contents>
<Contents><Key>r/%E6%97%A5&amp;</Key><Size>0</Size></Contents>
<CommonPrefixes><Prefix>r/d%25ir/</Prefix></CommonPrefixes></ListBucketResult>"""


@pytest.mark.parametrize("ns", ["", ' xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'])
def test_listing_pages_are_parsed(ns):
    encoded = LIST_PAGE.format(ns=ns, encoding="<EncodingType>url</EncodingType>",
                               truncated="true", token="<NextContinuationToken>t/1=</NextContinuationToken>")
    assert _s3wire.list_page(encoded.encode()) == {
        "Contents": [{"Key": "r/a b+c d", "Size": 12}, {"Key": "r/日&", "Size": 0}],
        "CommonPrefixes": [{"Prefix": "r/d%ir/"}],
        "IsTruncated": True, "NextContinuationToken": "t/1=",
    }
    # a server that did not encode (no EncodingType): the names are taken as they are
    plain = LIST_PAGE.format(ns=ns, encoding="", truncated="false", token="")
    page = _s3wire.list_page(plain.encode())
    assert [c["Key"] for c in page["Contents"]] == ["r/a+b%2Bc%20d", "r/%E6%97%A5&"]
    assert page["IsTruncated"] is False and page["NextContinuationToken"] is None
    with pytest.raises(ValueError, match="not valid XML"):
        _s3wire.list_page(b"<ListBucketResult><Contents>")
    with pytest.raises(ValueError, match="not a listing but <Error>"):
        _s3wire.list_page(b"<Error><Code>Odd</Code></Error>")


def test_calls_send_one_request_each(rclone_server, s3_env, wire_seen):
    """On rclone, which checks every signature: each call of the data path is one request."""
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{rclone_server.new_bucket()}/r")
    cf.put("k", b"hello", compress=None)
    assert wire_seen == ["PUT"]
    wire_seen.clear()
    assert cf.get("k") == b"hello" and cf.get("missing") is None
    assert wire_seen == ["GET", "GET"]
    wire_seen.clear()
    assert cf.exists(["k", "missing"]) == {"k": True, "missing": False}
    assert cf.size("k") == 5
    assert wire_seen == ["HEAD", "HEAD", "HEAD"]
    wire_seen.clear()
    assert list(cf.list()) == ["k"]
    assert wire_seen == ["GET?encoding-type,list-type,max-keys,prefix"]


@pytest.mark.parametrize("key", ["é ü/+%2F=&~;,@$!'()*", "query?and#fragment", "sp ace/tab\tkey"])
def test_keys_that_need_encoding_are_signed_as_sent(rclone_server, s3_env, wire_seen, key):
    """rclone checks every signature: a key sent percent-encoded must be signed in that form."""
    bucket = rclone_server.new_bucket()
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/r")
    cf.put(key, b"odd", compress=None)
    assert cf.get(key) == b"odd" and cf.exists(key) is True
    assert list(cf.list()) == [key]  # rclone URL-encodes the names in listings when asked
    assert wire_seen == ["PUT", "GET", "HEAD", "GET?encoding-type,list-type,max-keys,prefix"]
    assert rclone_server.admin().get_object(Bucket=bucket, Key="r/" + key)["Body"].read() == b"odd"


def test_refused_credentials_name_the_object(rclone_server, s3_env):
    bucket = rclone_server.new_bucket()
    wrong = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "wrong-secret"}
    cf = CloudFiles(f"s3://{rclone_server.endpoint}/{bucket}/", secrets=wrong)
    assert cf.backend._wire() is not None
    with pytest.raises(AuthorizationError, match=f"{bucket}/k.*SignatureDoesNotMatch"):
        cf.get("k")
    with pytest.raises(AuthorizationError, match=f"{bucket}/k"):
        cf.put("k", b"x")


def test_signer_repr_hides_the_secret():
    signer = _s3wire.Signer(AKID, SECRET, "us-east-1", "token")
    assert SECRET not in repr(signer) and "token" not in repr(signer)
