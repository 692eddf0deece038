"""Unit tests of bench/scale's parsing, checks and generated files.

Run with `python3 -m unittest discover -s bench -p 'test_*.py'`.
"""

import importlib.machinery
import importlib.util
import os
import subprocess
import tempfile
import unittest
from pathlib import Path

SCALE = Path(__file__).resolve().parent / "scale"
loader = importlib.machinery.SourceFileLoader("bench_scale", str(SCALE))
spec = importlib.util.spec_from_loader("bench_scale", loader)
bench_scale = importlib.util.module_from_spec(spec)
loader.exec_module(bench_scale)

CONVERGED = """PLAY RECAP *******************************************************************
e001 : ok=7    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
e002 : ok=7    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
e003 : ok=7    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
"""

MIXED = """PLAY RECAP *******************************************************************
e1 : ok=7    changed=2    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
e2 : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
e3 : ok=3    changed=1    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
"""


class RecapTest(unittest.TestCase):
    def test_parse_sums_hosts(self):
        cases = [
            (CONVERGED, bench_scale.Recap(hosts=3, changed=0, failed=0, unreachable=0)),
            (MIXED, bench_scale.Recap(hosts=3, changed=3, failed=1, unreachable=1)),
            ("error: connection refused\n", bench_scale.Recap(0, 0, 0, 0)),
        ]
        for text, expected in cases:
            with self.subTest(expected=expected):
                self.assertEqual(bench_scale.parse_recap(text), expected)

    def test_converged_passes(self):
        bench_scale.check_recap(bench_scale.parse_recap(CONVERGED), 3, True, Path("check.log"))

    def test_missing_host_raises(self):
        with self.assertRaisesRegex(bench_scale.ScaleError, "lists 3 of 4 hosts"):
            bench_scale.check_recap(bench_scale.parse_recap(CONVERGED), 4, True, Path("check.log"))

    def test_failure_raises(self):
        with self.assertRaisesRegex(bench_scale.ScaleError, "1 failed and 1 unreachable"):
            bench_scale.check_recap(bench_scale.parse_recap(MIXED), 3, False, Path("apply.log"))

    def test_change_raises_only_when_converged(self):
        recap = bench_scale.Recap(hosts=2, changed=5, failed=0, unreachable=0)
        bench_scale.check_recap(recap, 2, False, Path("apply.log"))
        with self.assertRaisesRegex(bench_scale.ScaleError, "reported 5 change"):
            bench_scale.check_recap(recap, 2, True, Path("check.log"))


class EndpointFilesTest(unittest.TestCase):
    def setUp(self):
        self.work = Path(tempfile.mkdtemp(prefix="test-scale-"))
        self.endpoints = bench_scale.Endpoints(self.work, 12)
        self.endpoints.ports = list(range(40001, 40013))
        self.endpoints.host_key_line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEST"

    def tearDown(self):
        for path in sorted(self.work.rglob("*"), reverse=True):
            path.unlink() if not path.is_dir() else path.rmdir()
        self.work.rmdir()

    def test_known_hosts_has_a_line_per_port(self):
        lines = self.endpoints.write_known_hosts().read_text().splitlines()
        self.assertEqual(len(lines), 12)
        self.assertEqual(lines[0], "[127.0.0.1]:40001 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEST")
        self.assertEqual(lines[11], "[127.0.0.1]:40012 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAITEST")

    def test_inventory_names_pad_and_ports(self):
        text = self.endpoints.write_inventory(Path("/srv/scale")).read_text()
        self.assertIn("    e01:\n      ansible_port: 40001\n", text)
        self.assertIn("    e12:\n      ansible_port: 40012\n", text)
        self.assertIn("    scale_root: /srv/scale\n", text)
        self.assertIn(f"    ansible_ssh_private_key_file: {self.work / 'id_ed25519'}\n", text)
        self.assertEqual((self.work / "ssh_config").read_text(), "")


class ProcessTest(unittest.TestCase):
    def test_free_ports_are_distinct(self):
        ports = bench_scale.free_ports(20)
        self.assertEqual(len(set(ports)), 20)
        self.assertTrue(all(1024 <= port <= 65535 for port in ports), ports)

    def test_descendants_rss_counts_children(self):
        child = subprocess.Popen(["sleep", "30"])
        try:
            own = bench_scale.descendants_rss_kib({os.getpid()})
            child_only = bench_scale.descendants_rss_kib({child.pid})
        finally:
            child.kill()
            child.wait()
        self.assertGreater(child_only, 0)
        self.assertGreater(own, child_only)
        self.assertEqual(bench_scale.descendants_rss_kib({2**22 + 1}), 0)


if __name__ == "__main__":
    unittest.main()
