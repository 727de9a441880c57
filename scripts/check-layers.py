#!/usr/bin/env python3
"""Checks goro's layering from the #include lines of its sources.

    scripts/check-layers.py           check; exit 1 with one line per violation
    scripts/check-layers.py --table   print the layer table (docs/ARCHITECTURE.md,
                                      "Layers", shows the same)

Every header and source under include/, lib/ and net/ belongs to one layer
of LAYERS, from the bottom up. A file may include files of its own layer
and of the layers below it, never above, so that each layer depends on
nothing above it, transitively. RULES add what the order alone cannot say
(which files of a lower layer a higher one may not reach). examples/ may
include only the public API; tests/ and benchmarks/ may include anything.
A file that no layer claims is a violation too: put it in the table.
"""

import fnmatch
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (layer, what it holds, path patterns relative to the repository root),
# from the bottom up. The first layer whose patterns match a file owns it.
LAYERS = [
    ("public", "the public API and the detail its templates inline; never lib/ (installed "
     "without it)",
     ["include/goro/*.hpp", "include/goro/detail/*.hpp", "include/goro/detail/*.inc"]),
    ("base", "locks, parking, thread starts, the frame allocator, the machine's CPU load",
     ["lib/mutex.hpp", "lib/parker.*", "lib/runtime_threads.hpp", "lib/thread_census.*",
      "lib/machine_load.*",
      "lib/alloc/*",
      "lib/asymmetric_fence.cpp", "lib/frame_allocator.cpp", "lib/procs.cpp"]),
    ("core", "the scheduler core: goroutine records, run queues, PCore, Scheduler",
     ["lib/goroutine.hpp", "lib/goroutine_pool.*", "lib/run_queue.hpp", "lib/spawn_stack.hpp",
      "lib/global_queue.hpp", "lib/p_core.hpp", "lib/scheduler_interface.hpp",
      "lib/runtime_state.hpp", "lib/scheduler.hpp", "lib/scheduler.cpp"]),
    ("mechanism headers", "each mechanism's per-P and runtime-wide state",
     ["lib/timer_heap.hpp", "lib/timers.hpp", "lib/poller.hpp", "lib/multishot.hpp", "lib/sysmon.hpp",
      "lib/blocking_calls.hpp", "lib/syscall_threads.hpp"]),
    ("P", "P: PCore plus each mechanism's per-P state; PMechanisms",
     ["lib/p.hpp", "lib/p.cpp"]),
    ("mechanisms", "timers, the poller and its backends, I/O, blocking calls, sysmon, "
     "channels' lock, sync, context, signals, group",
     ["lib/timers.cpp", "lib/poller.cpp", "lib/poller_uring.cpp", "lib/poller_epoll.cpp",
      "lib/io.cpp", "lib/multishot.cpp", "lib/blocking.cpp", "lib/syscall_threads.cpp", "lib/sysmon.cpp",
      "lib/chan_lock.cpp", "lib/sync.cpp", "lib/sync_mutex.cpp", "lib/context.cpp", "lib/signal.cpp",
      "lib/group.cpp"]),
    ("runtime", "one run(): owns the Ps, the scheduler and the mechanisms; the entry points",
     ["lib/runtime.hpp", "lib/runtime.cpp", "lib/runtime_threads.cpp", "lib/deadlock.cpp"]),
    ("net", "the networking library: the public API only", ["net/*"]),
]

# Files outside the layered tree, and what they may include.
UNLAYERED = [
    ("examples/*", "public"),  # the public API, as a user would
    ("tests/*", None),         # anything (tests reach internals)
    ("benchmarks/*", None),
]

# (who, must not include, why): beyond the order of LAYERS.
RULES = [
    (["lib/*"], ["lib/scheduler.hpp"],
     "only the scheduler core and the runtime include lib/scheduler.hpp; mechanisms reach "
     "the scheduler through lib/scheduler_interface.hpp, P through PMechanisms",
     ["core", "runtime"]),
    (["lib/poller_uring.cpp", "lib/poller_epoll.cpp"], ["lib/p.hpp"],
     "a poller backend sees its P as a PCore (lib/p_core.hpp) and the scheduler through "
     "lib/scheduler_interface.hpp", []),
    (["include/goro/detail/context_node.hpp"], ["include/goro/task.hpp", "include/goro/chan.hpp"],
     "the context tree's nodes name goroutines and channels by forward declaration only; what "
     "holds a Task or a channel lives in lib/context.cpp", []),
    (["net/*"], ["lib/*", "include/goro/detail/*"],
     "net/ is built on the public API only", []),
    (["net/http/*"], ["net/net_fd.hpp", "net/socket.hpp", "net/conn_access.hpp",
                      "net/error_internal.hpp", "net/mutex.hpp"],
     "net/http/ stands on goro::net's public API (include/goro/net/), not its internals", []),
]

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def matches(path, patterns):
    return any(fnmatch.fnmatch(path, p) for p in patterns)


def layer_of(path):
    for index, (name, _, patterns) in enumerate(LAYERS):
        if matches(path, patterns):
            return index, name
    return None, None


def resolve(including, target, quoted):
    """The repository path `#include target` in `including` names, or None
    for a file outside the tree (the standard library, Abseil, liburing)."""
    candidates = []
    if quoted:
        candidates.append(os.path.join(os.path.dirname(including), target))
    candidates += [os.path.join("lib", target), os.path.join("include", target)]
    for candidate in candidates:
        normal = os.path.normpath(candidate)
        if os.path.isfile(os.path.join(ROOT, normal)):
            return normal
    return None


def sources():
    for top in ("include", "lib", "net", "examples", "tests", "benchmarks"):
        for directory, _, files in sorted(os.walk(os.path.join(ROOT, top))):
            for name in sorted(files):
                if name.endswith((".hpp", ".cpp", ".h", ".inc")):
                    yield os.path.relpath(os.path.join(directory, name), ROOT)


def includes(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            m = INCLUDE.match(line)
            if m:
                target = resolve(path, m.group(2), m.group(1) == '"')
                if target is not None:
                    yield number, target


def check():
    violations = []
    for path in sources():
        unlayered = next((allowed for pattern, allowed in UNLAYERED
                          if fnmatch.fnmatch(path, pattern)), "unset")
        level, name = layer_of(path)
        if level is None and unlayered == "unset":
            violations.append(f"{path}: in no layer; add it to LAYERS in scripts/check-layers.py "
                              "(and to the table in docs/ARCHITECTURE.md, \"Layers\")")
            continue
        for number, target in includes(path):
            target_level, target_name = layer_of(target)
            where = f"{path}:{number}: includes {target}"
            if level is None:  # examples, tests, benchmarks
                if unlayered == "public" and target_name != "public" and \
                        not fnmatch.fnmatch(target, "examples/*"):
                    violations.append(f"{where}, but examples use the public API only")
                continue
            if target_level is None:
                if not fnmatch.fnmatch(target, os.path.dirname(path) + "/*"):
                    violations.append(f"{where}, which is in no layer")
                continue
            if target_level > level:
                violations.append(
                    f"{where}: layer '{name}' may not include layer '{target_name}', which is "
                    f"above it (a layer includes only its own and lower layers)")
                continue
            for who, forbidden, why, exempt in RULES:
                if matches(path, who) and matches(target, forbidden) and name not in exempt:
                    violations.append(f"{where}: {why}")
    return violations


def print_table():
    print("| layer (bottom up) | holds | files |")
    print("|---|---|---|")
    for name, holds, patterns in LAYERS:
        files = ", ".join(f"`{p}`" for p in patterns)
        print(f"| {name} | {holds} | {files} |")


def main():
    if sys.argv[1:] == ["--table"]:
        print_table()
        return 0
    violations = check()
    for v in violations:
        print(f"check-layers: {v}", file=sys.stderr)
    if violations:
        print(f"check-layers: {len(violations)} violation(s) of the layering in "
              "docs/ARCHITECTURE.md, \"Layers\"", file=sys.stderr)
        return 1
    print("check-layers: every #include keeps to the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
