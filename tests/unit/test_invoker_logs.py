"""Activation log formatting, merging and the size limit."""

from datetime import UTC, datetime

from invoker.logs import LogLine, limit, merge, timestamp, truncated_message


def test_timestamps_are_utc_with_microseconds_and_z():
    assert timestamp(datetime(2024, 5, 6, 7, 8, 9, 12, tzinfo=UTC)) == "2024-05-06T07:08:09.000012Z"


def test_a_line_pads_the_timestamp_to_30_columns():
    line = LogLine("2024-05-06T07:08:09.000012Z", "stdout", "hello")
    assert line.format() == "2024-05-06T07:08:09.000012Z    stdout: hello"
    assert line.format().index("stdout") == 31


def test_streams_are_merged_in_time_order():
    out = [LogLine("2024-01-01T00:00:01.000000Z", "stdout", "a"), LogLine("2024-01-01T00:00:03.000000Z", "stdout", "c")]
    err = [LogLine("2024-01-01T00:00:02.000000Z", "stderr", "b")]
    assert [line.text for line in merge(out, err)] == ["a", "b", "c"]


def test_lines_within_the_limit_are_all_kept():
    lines = [LogLine("t", "stdout", "12345"), LogLine("t", "stdout", "67890")]
    kept, truncated = limit(lines, 10)
    assert len(kept) == 2
    assert truncated is False


def test_the_limit_counts_utf8_bytes_of_the_text_and_cuts_at_the_first_line_past_it():
    lines = [LogLine("t", "stdout", "1234"), LogLine("t", "stdout", "éé"), LogLine("t", "stdout", "x")]
    kept, truncated = limit(lines, 7)
    assert [k.rsplit(": ", 1)[1] for k in kept] == ["1234"]
    assert truncated is True
    kept, truncated = limit(lines, 8)
    assert len(kept) == 2 and truncated is True


def test_a_zero_limit_keeps_nothing():
    assert limit([LogLine("t", "stdout", "x")], 0) == ([], True)


def test_the_truncation_message_names_the_limit_in_bytes():
    assert truncated_message(10485760) == (
        "Logs were truncated because the total bytes size exceeds the limit of 10485760 bytes."
    )
