"""Readers of /proc: a process's memory, CPU time and children, and the machine's busy time.

The meters and the stack both ask these; nothing here starts or stops a process.
"""

import os

# A process that exits while its /proc files are read: the open fails (FileNotFoundError), or
# a read of a file opened just before it went (ProcessLookupError, ESRCH).
PROCESS_GONE = (FileNotFoundError, ProcessLookupError)


def read_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB; empty when it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmRSS:", "VmHWM:")):
                    key, amount, _ = line.split()
                    values[key[:-1]] = int(amount)
    except PROCESS_GONE:
        return {}
    return values


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except PROCESS_GONE:
        return []


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except PROCESS_GONE:
        return ""


def cluster_processes(leader: int) -> dict[str, list[int]]:
    """A `qcluster`'s worker pids and its other (sentinel, pusher, monitor) pids, told apart by
    django-q2's process titles."""
    found: dict[str, list[int]] = {"cluster": [], "cluster_other": []}
    stack = children(leader)
    while stack:
        pid = stack.pop()
        stack.extend(children(pid))
        title = cmdline(pid)
        is_worker = title.endswith(" idle") or " processing " in title
        found["cluster" if is_worker else "cluster_other"].append(pid)
    return found


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time of a live process; with `reaped_children`, plus that of the
    children it has waited for (a recycled cluster worker's time moves to its parent)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except PROCESS_GONE:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root: int) -> float:
    """CPU time of a process and all its descendants, living or reaped."""
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu_seconds(pid, reaped_children=True)
        stack.extend(children(pid))
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent busy since boot (all cores)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")
