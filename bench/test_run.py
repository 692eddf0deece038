"""Unit tests of bench/run's parsing and report, with recorded tool output.

Run with `python3 -m unittest discover -s bench -p 'test_*.py'`.
"""

import argparse
import importlib.machinery
import importlib.util
import unittest
from pathlib import Path

RUN = Path(__file__).resolve().parent / "run"
loader = importlib.machinery.SourceFileLoader("bench_run", str(RUN))
spec = importlib.util.spec_from_loader("bench_run", loader)
bench_run = importlib.util.module_from_spec(spec)
loader.exec_module(bench_run)

VPSFORGE_RECAP = """PLAY RECAP *******************************************************************
h1 : ok=29   changed=27   unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
h2 : ok=29   changed=1   unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""

ANSIBLE_RECAP = """PLAY RECAP *********************************************************************
h1                         : ok=25   changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""

PYINFRA_CHANGED = """--> Results:
    Operation                              Hosts   Success   Error   No Change
    Start the app at boot                  1       1         -       -
    Grand total                            31      21        -       10
"""

PYINFRA_UNCHANGED = """--> Results:
    Operation                              Hosts   Success   Error   No Change
    Grand total                            31      -         -       31
"""

PYINFRA_DRY = """--> Detected changes:
    Operation                              Change   Conditional Change
    Install the web server packages        -        -
    Configure nginx                        2 (h1, h2)   -
    Reload systemd units                   -        1 (h1)
    Write the message of the day           1 (h2)   -

    Detected changes may not include every change pyinfra will execute.
"""


def result(seconds, max_rss_kib=20480):
    return bench_run.RunResult(seconds, 0, max_rss_kib, 0, Path("output.log"))


class CountChangesTest(unittest.TestCase):
    def test_recorded_outputs(self):
        cases = [
            ("vpsforge", VPSFORGE_RECAP, 28),
            ("ansible", ANSIBLE_RECAP, 0),
            ("pyinfra", PYINFRA_CHANGED, 21),
            ("pyinfra", PYINFRA_UNCHANGED, 0),
            ("pyinfra", PYINFRA_DRY, 3),
            ("vpsforge", "error: connection refused\n", None),
            ("pyinfra", "--> Disconnecting from hosts...\n", None),
        ]
        for tool, text, expected in cases:
            with self.subTest(tool=tool, expected=expected):
                self.assertEqual(bench_run.count_changes(tool, text), expected)


class CheckResultTest(unittest.TestCase):
    def run_result(self, exit_code, changes):
        return bench_run.RunResult(1.0, exit_code, 0, changes, Path("output.log"))

    def test_failed_run_raises(self):
        with self.assertRaises(bench_run.BenchError):
            bench_run.check_result("ansible", "first", self.run_result(2, 27), strict=False)

    def test_vpsforge_exit_two_passes(self):
        bench_run.check_result("vpsforge", "first", self.run_result(2, 27), strict=True)

    def test_strict_change_on_converged_raises(self):
        with self.assertRaises(bench_run.BenchError):
            bench_run.check_result("vpsforge", "converged", self.run_result(2, 1), strict=True)

    def test_strict_missing_summary_raises(self):
        with self.assertRaises(bench_run.BenchError):
            bench_run.check_result("vpsforge", "check", self.run_result(0, None), strict=True)


class FormatReportTest(unittest.TestCase):
    def test_medians_ratios_and_round_trips(self):
        args = argparse.Namespace(
            runs=3,
            delay_ms=100,
            tools=["vpsforge", "ansible"],
            hosts=[1],
            cases=["converged"],
        )
        results = {
            ("vpsforge", 1, "converged", "direct"): [result(1.0), result(0.8), result(5.0)],
            ("vpsforge", 1, "converged", "delayed"): [result(2.0), result(2.2), result(2.1, 30720)],
            ("ansible", 1, "converged", "direct"): [result(10.0), result(9.0), result(8.0)],
            ("ansible", 1, "converged", "delayed"): [result(30.0), result(31.0), result(29.0)],
        }

        report = bench_run.format_report(args, results, ["direct", "delayed"])

        self.assertIn("| converged rerun | 1 | direct | 1.00 | 9.00 | 9.0x |", report)
        self.assertIn("| converged rerun | 1 | delayed | 2.10 | 30.00 | 14.3x |", report)
        # (2.10 - 1.00) / 0.2 s and (30.00 - 9.00) / 0.2 s.
        self.assertIn("| converged rerun | 1 | 5.5 | 105.0 |", report)
        self.assertIn("| converged rerun | 1 | 20.0 | 30.0 |", report)
        self.assertNotIn("first apply", report)


if __name__ == "__main__":
    unittest.main()
