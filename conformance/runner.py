"""Runs one CPython stdlib test module and prints one JSON line per test:
{"id": "test.test_select.SelectTestCase.test_select", "outcome": "ok"}.

Used by scripts/conformance.py, which runs it natively and under the
preload and compares the lines. Outcomes: ok, fail, error, skip,
expected-failure, unexpected-success. Test output goes to stderr.
"""

import json
import sys
import unittest


class Lines(unittest.TextTestResult):
    """Prints each outcome as it happens (a hang later loses nothing)."""

    def _emit(self, test, outcome):
        sys.__stdout__.write(json.dumps({"id": test.id(), "outcome": outcome}) + "\n")
        sys.__stdout__.flush()

    def addSuccess(self, test):
        super().addSuccess(test)
        self._emit(test, "ok")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._emit(test, "fail")

    def addError(self, test, err):
        super().addError(test, err)
        self._emit(test, "error")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._emit(test, "skip")

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._emit(test, "expected-failure")

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._emit(test, "unexpected-success")


def main():
    name = sys.argv[1]
    # Some modules need regrtest's resources; allow the network ones on
    # loopback only (the tests bind to localhost).
    from test import support

    support.use_resources = ["network", "subprocess", "cpu"]
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=int(__import__("os").environ.get("CONFORMANCE_VERBOSE", "0")), resultclass=Lines)
    runner.run(suite)


if __name__ == "__main__":
    main()
