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


def vsock_unusable():
    """True where AF_VSOCK sockets exist but cannot connect to this
    machine's own CID (no vsock transport: a container or a VM without
    one). test_socket's VSOCK tests then block forever in accept() natively,
    which would lose every test after them."""
    import socket
    if not hasattr(socket, "AF_VSOCK"):
        return False
    try:
        import fcntl
        import struct
        with open("/dev/vsock", "rb") as f:
            r = fcntl.ioctl(f, socket.IOCTL_VM_SOCKETS_GET_LOCAL_CID, "    ")
        cid = struct.unpack("I", r)[0]
    except OSError:
        return False  # test_socket skips them itself (no CID)
    s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
    try:
        s.settimeout(2)
        s.connect((cid, 9))
    except (ConnectionRefusedError, ConnectionResetError):
        return False  # a transport that answers
    except OSError:
        return True
    finally:
        s.close()
    return False


def without(suite, doomed):
    """`suite` with the tests whose id `doomed` accepts reported as skipped."""
    kept = unittest.TestSuite()
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            kept.addTest(without(t, doomed))
        elif doomed(t.id()):
            sys.__stdout__.write(json.dumps({"id": t.id(), "outcome": "skip"}) + "\n")
        else:
            kept.addTest(t)
    return kept


def main():
    name = sys.argv[1]
    # Some modules need regrtest's resources; allow the network ones on
    # loopback only (the tests bind to localhost).
    from test import support

    support.use_resources = ["network", "subprocess", "cpu"]
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    if name == "test.test_socket" and vsock_unusable():
        suite = without(suite, lambda tid: "VSOCK" in tid)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=int(__import__("os").environ.get("CONFORMANCE_VERBOSE", "0")), resultclass=Lines)
    runner.run(suite)


if __name__ == "__main__":
    main()
