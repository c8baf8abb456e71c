"""Hosts made of network namespaces, for the multi-host end-to-end tests.

A Lab is a small LAN: a switch namespace holding a bridge, and one namespace per host joined
to it by a veth pair, each host with an address on 10.77.0.0/24. Addresses exist only inside
the lab's namespaces, so nothing outside is ever a target. A test cuts a host's cable with
`lab.cut(host)` (the switch-side end goes down, as a pulled plug would) and mends it with
`lab.mend(host)`.

Every namespace (and with it every veth) the lab made is removed when it closes, pass or fail;
namespaces left by a lab whose process died (SIGKILL of pytest) are removed by the next lab.
Needs root and `ip netns`; `Lab.unavailable()` says why not, for a skip.
"""

import ctypes
import os
import re
import subprocess
import threading
from pathlib import Path

_CLONE_NEWNET = 0x40000000
_PREFIX = "lynxlab"
_NETNS_DIR = Path("/run/netns")
_SUBNET = "10.77.0"


def _ip(*args, check=True):
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale():
    """Remove namespaces of labs whose process is gone (lynxlab<pid>-<n>-<role>)."""
    if not _NETNS_DIR.is_dir():
        return
    for entry in _NETNS_DIR.iterdir():
        match = re.match(rf"^{_PREFIX}(\d+)-", entry.name)
        if match and not _pid_alive(int(match.group(1))):
            _ip("netns", "del", entry.name, check=False)


class Host:
    """One machine of the lab: a namespace with an address on the LAN."""

    def __init__(self, lab, name, netns, address, switch_port):
        self.lab = lab
        self.name = name
        self.netns = netns
        self.address = address
        self.switch_port = switch_port  # the veth end on the bridge

    def argv(self, argv):
        """argv run inside this host (ip netns exec execs it: the PID is the program's)."""
        return ["ip", "netns", "exec", self.netns, *[str(a) for a in argv]]

    def call(self, fn, *args, **kwargs):
        """fn(*args, **kwargs) in a thread that has joined this host's network namespace, so
        the sockets it opens live there. Returns fn's value or raises its exception."""
        box = {}

        def run():
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fd = os.open(_NETNS_DIR / self.netns, os.O_RDONLY)
                try:
                    if libc.setns(fd, _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {self.netns}")
                finally:
                    os.close(fd)
                box["value"] = fn(*args, **kwargs)
            except BaseException as exc:  # handed back to the caller's thread
                box["error"] = exc

        thread = threading.Thread(target=run, name=f"netns-{self.name}", daemon=True)
        thread.start()
        thread.join()
        if "error" in box:
            raise box["error"]
        return box.get("value")

    def __repr__(self):
        return f"Host({self.name}, {self.address})"


class Lab:
    """A LAN of namespaces. Use as a context manager, or call close()."""

    _count = 0

    @staticmethod
    def unavailable():
        """Why this machine cannot build a lab, or None when it can."""
        if os.geteuid() != 0:
            return "network namespaces need root"
        try:
            probe = f"{_PREFIX}{os.getpid()}-probe"
            result = _ip("netns", "add", probe, check=False)
            if result.returncode != 0:
                return f"ip netns add failed: {result.stderr.strip()}"
            _ip("netns", "del", probe, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"cannot run ip: {exc}"
        return None

    def __init__(self):
        _sweep_stale()
        Lab._count += 1
        self.tag = f"{_PREFIX}{os.getpid()}-{Lab._count}"
        self.hosts = []
        self._namespaces = []
        self._closed = False
        try:
            self.switch = self._add_netns("sw")
            _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
            _ip("-n", self.switch, "link", "set", "br0", "up")
        except Exception:
            self.close()
            raise

    def _add_netns(self, role):
        name = f"{self.tag}-{role}"
        _ip("netns", "add", name)
        self._namespaces.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def add_host(self, name):
        """A new host on the LAN, its address 10.77.0.<n>."""
        index = len(self.hosts) + 1
        netns = self._add_netns(name)
        port = f"p{index}"
        #  Both ends are born inside their namespaces: nothing appears in the caller's.
        _ip("link", "add", "eth0", "netns", netns, "type", "veth", "peer", "name", port,
            "netns", self.switch)
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        address = f"{_SUBNET}.{index}"
        _ip("-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
        _ip("-n", netns, "link", "set", "eth0", "up")
        host = Host(self, name, netns, address, port)
        self.hosts.append(host)
        return host

    def cut(self, host):
        """Pull host's cable: its switch port goes down (its own end stays configured)."""
        _ip("-n", self.switch, "link", "set", host.switch_port, "down")

    def mend(self, host):
        _ip("-n", self.switch, "link", "set", host.switch_port, "up")

    def close(self):
        """Remove every namespace the lab made (their veths go with them). Idempotent."""
        if self._closed:
            return
        self._closed = True
        problems = []
        for name in reversed(self._namespaces):
            result = _ip("netns", "del", name, check=False)
            if result.returncode != 0:
                problems.append(f"{name}: {result.stderr.strip()}")
        if problems:
            raise RuntimeError("lab cleanup failed: " + "; ".join(problems))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False
