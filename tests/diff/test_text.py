"""Line diffs of file contents: difflib's unified diff, made safe to print and bounded."""

from __future__ import annotations

from reconciler.diff.text import MAX_LINE_CHARS, MAX_LINES, unified_diff


def test_equal_texts_have_no_diff() -> None:
    assert unified_diff("a\n", "a\n") == ""


def test_the_diff_turns_observed_into_desired_with_context() -> None:
    assert unified_diff("a\nb\nc\n", "a\nB\nc\n").splitlines() == [
        "--- observed",
        "+++ desired",
        "@@ -1,3 +1,3 @@",
        " a",
        "-b",
        "+B",
        " c",
    ]


def test_a_missing_final_newline_is_marked_as_git_does() -> None:
    lines = unified_diff("a\n", "a").splitlines()
    assert lines[-3:] == ["-a", "+a", "\\ No newline at end of file"]


def test_control_characters_cannot_reach_the_terminal() -> None:
    diff = unified_diff("ok\r\n", "\x1b[2Jcleared\tcol\n")
    assert "\x1b" not in diff and "\r" not in diff
    assert "-ok\\x0d" in diff.splitlines()
    assert "+\\x1b[2Jcleared\tcol" in diff.splitlines()  # a tab stays a tab


def test_long_lines_and_long_diffs_are_cut_with_a_note() -> None:
    wide = unified_diff("", "x" * (MAX_LINE_CHARS + 50) + "\n").splitlines()
    assert wide[-1] == "+" + "x" * MAX_LINE_CHARS + "... (50 more characters)"
    many = unified_diff("", "".join(f"line {i}\n" for i in range(1000))).splitlines()
    assert len(many) == MAX_LINES + 1
    assert many[-1] == f"... ({1003 - MAX_LINES} more diff lines not shown)"
