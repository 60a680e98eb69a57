"""`make bench`'s runner rewrites only its own section of RESULTS.md, and keeps the rows of
benchmarks it did not rerun."""

import importlib.util
from pathlib import Path

spec = importlib.util.spec_from_file_location(
    "run_all", Path(__file__).parents[1] / "bench" / "run_all.py"
)
run_all = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_all)


def record(output: str, seconds: float = 3.0, code: int = 0) -> dict:
    return {
        "command": "python bench/x.py",
        "seconds": seconds,
        "code": code,
        "output": output,
        "machine": "a test CPU",
        "date": "2026-12-05",
    }


def test_the_section_is_replaced_and_the_rest_of_the_file_kept(tmp_path):
    results = tmp_path / "RESULTS.md"
    results.write_text("# Measured results\n\nhand-written text\n")
    first = {"warp": record("| a |\n|---|\n| 1 |"), "splat": record("plain text output")}
    run_all.rewrite(results, run_all.section(first))
    text = results.read_text()
    assert text.startswith("# Measured results\n\nhand-written text\n")
    assert text.count(run_all.BEGIN) == 1 and text.count(run_all.END) == 1
    assert "```text\nplain text output\n```" in text  # non-tables are fenced, tables are not
    assert "| a |\n|---|\n| 1 |" in text
    results.write_text(text + "\n## Written after the section\n")
    second = {**first, "warp": record("| b |\n|---|\n| 2 |", code=1)}  # --only warp, failed
    run_all.rewrite(results, run_all.section(second))
    text = results.read_text()
    assert text.count(run_all.BEGIN) == 1 and "| 1 |" not in text and "| 2 |" in text
    assert "| warp (failed) |" in text and "plain text output" in text  # splat's row kept
    assert text.rstrip().endswith("## Written after the section")
    assert text.index("### warp") < text.index("### splat")  # BENCHMARKS' order, not run order
