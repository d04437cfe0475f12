"""The fast timestamp parser gives exactly what botocore's own parser gives, for every form AWS sends."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from botocore.utils import parse_timestamp
from cloudbridge_aws.session import fast_timestamp
from hypothesis import given
from hypothesis import strategies as st

FORMS = [
    "2026-12-07T18:00:00.000Z",
    "2026-12-07T18:00:00Z",
    "2026-12-07T18:00:00.123456+00:00",
    "2026-12-07T20:00:00+02:00",
    "Mon, 07 Dec 2026 18:00:00 GMT",
    "1700000000",
    "2026-12-07T18:00:00",
    "not a date at all T",
]


def test_every_form_matches_botocore() -> None:
    for value in FORMS:
        try:
            expected = parse_timestamp(value)
        except ValueError:
            expected = None
        try:
            got = fast_timestamp(value)
        except ValueError:
            got = None
        assert got == expected, value
        if got is not None:
            assert got.utcoffset() == expected.utcoffset(), value


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1)), st.sampled_from(["Z", "+00:00"]))
def test_s3_listing_timestamps_match(moment: datetime, suffix: str) -> None:
    value = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}" + suffix
    got = fast_timestamp(value)
    assert got == parse_timestamp(value)
    assert got.utcoffset() == timedelta(0) and got.replace(tzinfo=None) == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )
    assert got.tzinfo is not None and got.astimezone(timezone.utc) == got


def test_the_session_installs_it(aws_env) -> None:  # the S3 client of a real session parses with it
    from cloudbridge.backends import get_provider

    storage = get_provider("aws").storage
    factory = storage.session.boto_session._session.get_component("response_parser_factory")
    assert factory._defaults.get("timestamp_parser") is fast_timestamp
