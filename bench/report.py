#!/usr/bin/env python3
"""Turns the JSON results of bench/run into docs/performance.md (see bench/run)."""
import datetime
import json
import pathlib
import platform
import subprocess
import sys

TARGETS = {
    "call": "a call through a thunk costs at most 1.10x the context-pointer floor, and is at least 15x faster than "
            "a libffi closure",
    "create": "batched creation at most 25 ns per thunk; one-thunk-per-page creation at most 2 µs",
    "memory": "at most 32 bytes per thunk at full pages",
    "heap": "mode 2 scales at least 1.8x from 1 to 2 threads; mode 3 does not collapse",
    "unique_cycle": "a make_unique_thunk + destroy cycle costs at most 0.5x the libffi closure cycle (alloc + prep + "
                    "free) measured in the same process, in every form, safety mode and heap; no system call in "
                    "steady state",
    "unique_threads": "2 threads making and destroying unique thunks reach at least 1.6x the throughput of 1 thread, "
                      "in modes 2 and 3",
    "prebuilt_call": "a call through a prebuilt stub (unique thunk, or page of prebuilt stubs) costs at most 1.3x the "
                     "context-pointer floor",
    "unique_memory": "at most 32 bytes of committed memory per unique thunk at 10,000 thunks, whatever way the stubs' "
                     "code comes from",
    "closure_call": "a call through a closure costs at most 1.15x the context-pointer floor for a compile-time member",
}

FORMS = [("compile_time", "compile-time member"), ("run_time", "run-time member"), ("callable", "callable")]


def load(directory, name):
    with open(pathlib.Path(directory) / f"{name}.json") as f:
        return json.load(f)


def medians(data):
    """name -> the median aggregate's row (or the single run's row when there are no repetitions)."""
    rows = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") == "median":
            rows[b["run_name"]] = b
        elif b.get("run_type") == "iteration" and b["run_name"] not in rows:
            rows[b["run_name"]] = b
    return rows


def cvs(data):
    """name -> the coefficient of variation of its repetitions (a fraction), when there were repetitions."""
    return {b["run_name"]: b for b in data["benchmarks"] if b.get("aggregate_name") == "cv"}


def spread(cv_rows, name, key="cpu_time"):
    row = cv_rows.get(name)
    return f"±{100 * row[key]:.0f}%" if row else "n/a"


def load_of(data):
    load = data["context"].get("load_avg")
    return " / ".join(f"{x:.1f}" for x in load) if load else "unknown"


def ns(row, key="real_time"):
    scale = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}[row["time_unit"]]
    return row[key] * scale


def ns_per_item(row):
    return 1e9 / row["items_per_second"]


def fmt_ns(value):
    return f"{value:,.1f} ns" if value < 10_000 else f"{value / 1000:,.2f} µs"


def verdict(ok):
    return "met" if ok else "**not met**"


def call_section(rows):
    out = ["## 1. Call overhead", "",
           "One C callback called in a tight loop; every contender ends in the same out-of-line member function. "
           "CPU time per call (median); ratios are to the floor and to libffi with the same arguments, in the same "
           "run.", ""]
    contenders = [("floor", "floor: function taking a context pointer"),
                  ("thunk_compile_time", "member_thunk, compile-time member"),
                  ("thunk_run_time", "member_thunk, run-time member"),
                  ("thunk_callable", "member_thunk, callable"),
                  ("libffi", "libffi closure"),
                  ("std_function", "user-data trampoline + std::function")]
    out.append("| Contender | 0 args | 2 args | 4 args | x floor (0/2/4) | libffi / this (0/2/4) |")
    out.append("| --- | ---: | ---: | ---: | --- | --- |")
    ratios = {}
    for key, label in contenders:
        times = []
        for n in (0, 2, 4):
            times.append(ns(rows[f"call/{n}/{key}"], "cpu_time"))
        floors = [ns(rows[f"call/{n}/floor"], "cpu_time") for n in (0, 2, 4)]
        ffis = [ns(rows[f"call/{n}/libffi"], "cpu_time") for n in (0, 2, 4)]
        x_floor = [t / f for t, f in zip(times, floors)]
        x_ffi = [f / t for t, f in zip(times, ffis)]
        ratios[key] = (max(x_floor), min(x_ffi))
        out.append(f"| {label} | " + " | ".join(fmt_ns(t) for t in times) + " | " +
                   " / ".join(f"{r:.2f}" for r in x_floor) + " | " + " / ".join(f"{r:.1f}" for r in x_ffi) + " |")
    out += ["", f"Target: {TARGETS['call']}. Worst case over 0, 2 and 4 arguments:", ""]
    for key, label in contenders:
        if key.startswith("thunk_"):
            x_floor, x_ffi = ratios[key]
            out.append(f"- {label}: {x_floor:.2f}x the floor ({verdict(x_floor <= 1.10)}), {x_ffi:.1f}x faster than "
                       f"libffi ({verdict(x_ffi >= 15)})")
    floor_ffi = ratios["floor"][1]
    out += [f"- for scale, the floor itself: {floor_ffi:.1f}x faster than libffi", ""]
    return out


def create_section(rows):
    out = ["## 2. Creation and destruction", "",
           "Per thunk (median; manual timing of only the part named, on batches of 16 pages, which the page cache "
           "holds, or 1024 libffi closures). The cycle rows time allocate + make_thunk + mark_executable + destroy "
           "as one.", ""]
    out.append("| How | create | destroy | ratio to libffi (create) |")
    out.append("| --- | ---: | ---: | ---: |")
    ffi = ns_per_item(rows["create/libffi/manual_time"])
    for key, label in [("batched", "member_thunk, whole pages, one mark_executable per page"),
                       ("one_per_page", "member_thunk, one thunk per page"),
                       ("libffi", "libffi closure (alloc + prep)")]:
        c = ns_per_item(rows[f"create/{key}/manual_time"])
        d = ns_per_item(rows[f"destroy/{key}/manual_time"])
        out.append(f"| {label} | {fmt_ns(c)} | {fmt_ns(d)} | {c / ffi:.2f} |")
    cycle = ns_per_item(rows["cycle/one_per_page"])
    cycle_ffi = ns_per_item(rows["cycle/libffi"])
    out.append(f"| cycle: member_thunk one thunk per page | {fmt_ns(cycle)} (whole cycle) | | {cycle / cycle_ffi:.2f} |")
    out.append(f"| cycle: libffi closure | {fmt_ns(cycle_ffi)} (whole cycle) | | 1.00 |")
    batched = ns_per_item(rows["create/batched/manual_time"])
    single = ns_per_item(rows["create/one_per_page/manual_time"])
    out += ["", f"Target: {TARGETS['create']}. Measured: {fmt_ns(batched)} per thunk batched "
            f"({verdict(batched <= 25)}), {fmt_ns(single)} per one-thunk page ({verdict(single <= 2000)}).", ""]
    return out


def mprotect_pairs(directory):
    """threads -> pairs per second, from mprotect_pairs' output."""
    result = {}
    for line in (pathlib.Path(directory) / "mprotect_pairs.txt").read_text().splitlines():
        fields = dict(item.split("=") for item in line.split()[1:])
        result[int(fields["threads"])] = float(fields["pairs_per_second"])
    return result


def heap_section(mode3, mode2, floor):
    out = ["## 3. Heap under contention", "",
           "allocate_page + make_thunk + mark_executable + destroy, on the default heap, from 1 and 2 threads at "
           "once; throughput of all threads together (median, real time).", ""]
    out.append("| Safety mode | 1 thread | 2 threads | scaling |")
    out.append("| --- | ---: | ---: | ---: |")
    scaling = {}
    for mode, rows in ((3, mode3), (2, mode2)):
        one = rows[f"heap/mode{mode}/real_time/threads:1"]["items_per_second"]
        two = rows[f"heap/mode{mode}/real_time/threads:2"]["items_per_second"]
        scaling[mode] = two / one
        out.append(f"| {mode} | {one / 1e3:,.0f} k ops/s | {two / 1e3:,.0f} k ops/s | {two / one:.2f}x |")
    out.append(f"| floor: `mprotect_pairs`, two `mprotect` per iteration, no allocator | {floor[1] / 1e3:,.0f} k/s | "
               f"{floor[2] / 1e3:,.0f} k/s | {floor[2] / floor[1]:.2f}x |")
    out += ["", f"Target: {TARGETS['heap']}. Measured: mode 2 {scaling[2]:.2f}x ({verdict(scaling[2] >= 1.8)}), "
            f"mode 3 {scaling[3]:.2f}x ({verdict(scaling[3] >= 0.9)}: not below 0.9x). See the notes on contention.", ""]
    return out


def memory_section(rows):
    out = ["## 4. Memory", "",
           "Committed bytes per live callback: what the process gained (accessible mappings from /proc/self/maps "
           "plus malloc's bytes in use) divided by the count; for member_thunk also the heap's own "
           "statistics().committed_bytes.", ""]
    out.append("| Contender | 1 | 128 | 10000 |")
    out.append("| --- | ---: | ---: | ---: |")
    for key, label in [("thunk_compile_time", "member_thunk, compile-time member or callable (process)"),
                       ("thunk_run_time", "member_thunk, run-time member (process)"),
                       ("libffi", "libffi closure (process)")]:
        cells = [f"{rows[f'memory/{key}/{n}/iterations:1']['bytes_per_thunk']:,.1f} B" for n in (1, 128, 10000)]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    for key, label in [("thunk_compile_time", "member_thunk, compile-time member (heap statistics)"),
                       ("thunk_run_time", "member_thunk, run-time member (heap statistics)")]:
        cells = [f"{rows[f'memory/{key}/{n}/iterations:1']['heap_bytes_per_thunk']:,.1f} B" for n in (1, 128, 10000)]
        out.append(f"| {label} | " + " | ".join(cells) + " |")
    full = rows["memory/thunk_compile_time/10000/iterations:1"]["heap_bytes_per_thunk"]
    out += ["", f"Target: {TARGETS['memory']}. Measured: {full:.1f} bytes per compile-time thunk at 10000 "
            f"({verdict(full <= 32.5)}; the excess over 32 is the last, partly filled page). A run-time member "
            "thunk also stores its object and member pointer in a data slot: 64 bytes.", ""]
    return out


def cycle_table(rows_of, worst):
    """rows_of: (label, heap name, (medians, cvs, load)); fills worst[label] with the worst ratio to libffi."""
    out = ["| Heap | compile-time member | run-time member | callable | libffi cycle (same process) | "
           "x libffi (ct / rt / callable) |",
           "| --- | ---: | ---: | ---: | ---: | --- |"]
    for label, heap, (rows, cv, _) in rows_of:
        ffi = ns_per_item(rows["unique/cycle/libffi"])
        cells, ratios = [], []
        for form, _ in FORMS:
            name = f"unique/cycle/{heap}/{form}"
            t = ns_per_item(rows[name])
            cells.append(f"{fmt_ns(t)} {spread(cv, name)}")
            ratios.append(t / ffi)
        worst[label] = max(ratios)
        out.append(f"| {label} | " + " | ".join(cells) + f" | {fmt_ns(ffi)} {spread(cv, 'unique/cycle/libffi')} | " +
                   " / ".join(f"{r:.2f}" for r in ratios) + " |")
    return out


def unique_cycle_section(modes, threaded):
    """modes: mode number -> (medians, cvs, load) of bench_unique_mode<N>; threaded: the same of
    bench_unique_threads_mode<N> (modes 2 and 3)."""
    out = ["## 5. Unique thunks: the make + destroy cycle", "",
           "`make_unique_thunk` + destruction of the `unique_thunk`, one per iteration, in each form, from the default "
           "heap in each safety mode (one executable per mode) and from a `heap<slim_lock>` (in the mode-3 "
           "executable); against libffi's closure cycle in the same process: `ffi_closure_alloc` + "
           "`ffi_prep_closure_loc` + `ffi_closure_free` (the `ffi_cif` prepared once, as a program does per "
           "signature). CPU time per cycle (median of the repetitions; ± is their coefficient of variation); the "
           "ratio is to the libffi cycle of the same executable. These executables never start a thread: glibc's "
           "malloc and locks keep their single-threaded fast paths, libffi's best case.", ""]
    worst = {}
    rows_of = [(f"default heap, mode {mode}", f"mode{mode}", modes[mode]) for mode in (1, 2, 3)]
    rows_of.append(("`heap<slim_lock>`", "slim_lock", modes[3]))
    out += cycle_table(rows_of, worst)
    out += ["", "The same in a process that has started (and joined) a thread before anything else "
            "(`bench_unique_threads_mode<N>`), as a program that uses the thread-safe default heap is likely to "
            "have: glibc then takes its atomic paths for good, which slows libffi's cycle and the run-time form's "
            "`operator new`, not the other forms.", ""]
    worst_threaded = {}
    out += cycle_table([(f"default heap, mode {mode}", f"mode{mode}", threaded[mode]) for mode in (2, 3)],
                       worst_threaded)
    out += ["", "System calls of the cycle once warm (`unique/syscalls/...`: 4096 cycles to warm up, then 100,000 "
            "counted, per cycle): every system call of the thread as the kernel counts them (tracepoint "
            "`raw_syscalls:sys_enter`, through `perf_event_open`), and every call into the OS back end of a "
            "`heap<slim_lock, test::failing_os>` (the native back end counting each call: "
            "`tests/support/failing_os.hpp`). The warm-up columns are totals (0 when an earlier benchmark of the "
            "process had already warmed that heap).", ""]
    out.append("| Heap | Form | system calls per cycle | back-end calls per cycle | system calls in warm-up | "
               "back-end calls in warm-up |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: |")
    steady = []
    syscall_rows = [(f"default heap, mode {m}", f"mode{m}", modes[m][0]) for m in (1, 2, 3)]
    syscall_rows += [("`heap<slim_lock>`", "slim_lock", modes[3][0]),
                     ("`heap<slim_lock, failing_os>`", "slim_lock_counting", modes[3][0])]

    def count(value, per_cycle):
        if value < 0:
            return "not counted"
        return f"{value:.4f}" if per_cycle else f"{value:,.0f}"

    for label, heap, rows in syscall_rows:
        for form, form_label in FORMS:
            row = rows[f"unique/syscalls/{heap}/{form}/iterations:1"]
            for key in ("syscalls_per_cycle", "os_calls_per_cycle"):
                if row[key] >= 0:
                    steady.append(row[key])
            out.append(f"| {label} | {form_label} | {count(row['syscalls_per_cycle'], True)} | "
                       f"{count(row['os_calls_per_cycle'], True)} | {count(row['syscalls_warmup'], False)} | "
                       f"{count(row['os_calls_warmup'], False)} |")
    kernel_counted = any(modes[3][0][f"unique/syscalls/mode3/{f}/iterations:1"]["syscalls_per_cycle"] >= 0
                         for f, _ in FORMS)
    out += ["", f"Target: {TARGETS['unique_cycle']}. Measured, worst form of each heap:", ""]
    for label, ratio in worst.items():
        out.append(f"- {label}: {ratio:.2f}x the libffi cycle ({verdict(ratio <= 0.5)})")
    for label, ratio in worst_threaded.items():
        out.append(f"- {label}, in a process that has had a second thread: {ratio:.2f}x the libffi cycle "
                   f"({verdict(ratio <= 0.5)})")
    none = all(v == 0 for v in steady)
    out.append(f"- system calls once warm: {'none' if none else 'some'} in {len(steady)} counts "
               f"({verdict(none)}{'' if kernel_counted else '; the kernel count was not available, only the back end was counted'})")
    out.append("")
    return out


def unique_threads_section(threaded):
    out = ["## 6. Unique thunks from 2 threads", "",
           "`bench_unique_threads_mode<N>`: the same cycle on the default heap from 1 and 2 threads at once (mode 2: "
           "a heap per thread; mode 3: one locked heap with a cache of slots per thread); throughput of all threads "
           "together (median, real time). "
           "The first row of each mode is the machine's own scaling in the same process: each thread runs a private "
           "arithmetic loop that shares nothing; the last column divides each scaling by it.", ""]
    out.append("| Safety mode | Work | 1 thread | 2 threads | scaling | scaling / the machine's |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: |")
    scaling = {}
    for mode in (2, 3):
        rows = threaded[mode][0]
        for key, label in [("independent", "independent work (no library)"), ("compile_time", "compile-time member"),
                           ("run_time", "run-time member")]:
            base = f"unique/threads/{key}" if key == "independent" else f"unique/threads/mode{mode}/{key}"
            one = rows[f"{base}/real_time/threads:1"]["items_per_second"]
            two = rows[f"{base}/real_time/threads:2"]["items_per_second"]
            scaling[(mode, key)] = two / one
            relative = scaling[(mode, key)] / scaling[(mode, "independent")]
            out.append(f"| {mode} | {label} | {one / 1e6:,.1f} M/s | {two / 1e6:,.1f} M/s | {two / one:.2f}x | "
                       f"{relative:.2f} |")
    out += ["", f"Target: {TARGETS['unique_threads']}. Measured:", ""]
    for mode in (2, 3):
        for key, label in [("compile_time", "compile-time member"), ("run_time", "run-time member")]:
            x = scaling[(mode, key)]
            out.append(f"- mode {mode}, {label}: {x:.2f}x ({verdict(x >= 1.6)}); the machine gave "
                       f"{scaling[(mode, 'independent')]:.2f}x to independent work in the same run")
    out.append("")
    return out


def prebuilt_call_section(rows, cv):
    out = ["## 7. Calls through prebuilt stubs", "",
           "`bench_call_prebuilt`: the call benchmark of section 1 built with `MEMBER_THUNK_NO_RUNTIME_CODE`, so "
           "its pages are pages of prebuilt stubs (checked: `page.prebuilt()`), joined by unique thunks; its own "
           "floor and libffi, in the same process. CPU time per call (median).", ""]
    contenders = [("floor", "floor: function taking a context pointer"),
                  ("thunk_compile_time", "page of prebuilt stubs, compile-time member"),
                  ("thunk_run_time", "page of prebuilt stubs, run-time member"),
                  ("thunk_callable", "page of prebuilt stubs, callable"),
                  ("unique_compile_time", "unique thunk, compile-time member"),
                  ("unique_run_time", "unique thunk, run-time member"),
                  ("unique_callable", "unique thunk, callable"),
                  ("libffi", "libffi closure")]
    out.append("| Contender | 0 args | 2 args | 4 args | x floor (0/2/4) | libffi / this (0/2/4) |")
    out.append("| --- | ---: | ---: | ---: | --- | --- |")
    worst = {}
    floors = [ns(rows[f"call/{n}/floor"], "cpu_time") for n in (0, 2, 4)]
    ffis = [ns(rows[f"call/{n}/libffi"], "cpu_time") for n in (0, 2, 4)]
    for key, label in contenders:
        times = [ns(rows[f"call/{n}/{key}"], "cpu_time") for n in (0, 2, 4)]
        x_floor = [t / f for t, f in zip(times, floors)]
        x_ffi = [f / t for t, f in zip(times, ffis)]
        worst[key] = max(x_floor)
        out.append(f"| {label} | " + " | ".join(f"{fmt_ns(t)} {spread(cv, f'call/{n}/{key}')}"
                                                for t, n in zip(times, (0, 2, 4))) + " | " +
                   " / ".join(f"{r:.2f}" for r in x_floor) + " | " + " / ".join(f"{r:.1f}" for r in x_ffi) + " |")
    prebuilt = all(rows[f"call/{n}/thunk_compile_time"].get("prebuilt", 0) == 1 for n in (0, 2, 4))
    out += ["", f"Target: {TARGETS['prebuilt_call']}. Worst case over 0, 2 and 4 arguments"
            f"{'' if prebuilt else ' (**the pages were not prebuilt: the run is invalid**)'}:", ""]
    for key, label in contenders[1:-1]:
        out.append(f"- {label}: {worst[key]:.2f}x the floor ({verdict(worst[key] <= 1.3)})")
    out += ["", "Calls through pages of run-time code are section 1 (`bench_call`, unchanged, its own floor).", ""]
    return out


def unique_memory_section(rows):
    out = ["## 8. Memory of unique thunks", "",
           "Unique thunks (compile-time member) alive in a fresh `heap<>`, for each way the stubs' code can come "
           "from (forced with `stub_sources::force`), per thunk. *Heap* is the heap's own "
           "`statistics().committed_bytes` (its data pages). The process columns are the growth of "
           "`/proc/self/smaps_rollup` while the thunks were made, divided by their count: *Private_Dirty* is memory "
           "only this process has written; *Pss_Dirty* adds the dirty pages it shares, divided among their "
           "mappings (the sealed memfd's pages); *Rss* counts every page mapped, once per mapping, shared or not "
           "(the code mapped from the program's file or the memfd appears there although it is no memory of the "
           "process's own). Committed memory is the larger of *Heap* and *Pss_Dirty*.", ""]
    out.append("| Way | Heap: 1 / 128 / 10000 | Private_Dirty at 10000 | Pss_Dirty at 10000 | Rss at 10000 | "
               "committed at 10000 |")
    out.append("| --- | --- | ---: | ---: | ---: | ---: |")
    committed = {}
    ways = [("image_file", "`image_file`: mapped from the program's file"),
            ("sealed_copy", "`sealed_copy`: a sealed memfd, mapped"),
            ("runtime_copy", "`runtime_copy`: a private copy, sealed"),
            ("image_pool", "`image_pool`: the pool in the program (.bss data)")]
    for way, label in ways:
        heap = [rows[f"memory/unique/{way}/{n}/iterations:1"]["heap_bytes_per_thunk"] for n in (1, 128, 10000)]
        full = rows[f"memory/unique/{way}/10000/iterations:1"]
        dirty = full["pss_dirty_per_thunk"] if full["pss_dirty_per_thunk"] >= 0 else full["private_dirty_per_thunk"]
        committed[way] = max(heap[2], dirty)
        out.append(f"| {label} | " + " / ".join(f"{h:,.1f} B" for h in heap) +
                   f" | {full['private_dirty_per_thunk']:,.1f} B | {full['pss_dirty_per_thunk']:,.1f} B | "
                   f"{full['rss_per_thunk']:,.1f} B | {committed[way]:,.1f} B |")
    out += ["", f"Target: {TARGETS['unique_memory']}. Measured (committed at 10000):", ""]
    for way, label in ways:
        out.append(f"- {way}: {committed[way]:.1f} bytes per thunk ({verdict(committed[way] <= 32)})")
    out.append("")
    return out


def closure_table(rows, cv, contenders, verdicts):
    """One executable's closure rows (bench_call or bench_call_prebuilt). contenders: (name, label), where a name with
    a slash is a row of that name under call/<n>/ (the floor, a thunk for comparison) and any other under
    closure/<n>/; rows the executable does not have are left out. verdicts: the closure names whose worst ratio to
    the floor the target covers. Returns the table's lines and (label, worst ratio) for each verdict."""
    def row_name(n, key):
        return f"call/{n}/{key[5:]}" if key.startswith("call/") else f"closure/{n}/{key}"

    out = ["| Contender | 0 args | 2 args | 4 args | x floor (0/2/4) | libffi closure / this (0/2/4) |",
           "| --- | ---: | ---: | ---: | --- | --- |"]
    floors = [ns(rows[f"call/{n}/floor"], "cpu_time") for n in (0, 2, 4)]
    ffis = [ns(rows[f"closure/{n}/libffi"], "cpu_time") for n in (0, 2, 4)]
    worst = []
    for key, label in contenders:
        names = [row_name(n, key) for n in (0, 2, 4)]
        if not all(name in rows for name in names):
            continue
        times = [ns(rows[name], "cpu_time") for name in names]
        x_floor = [t / f for t, f in zip(times, floors)]
        x_ffi = [f / t for t, f in zip(times, ffis)]
        if key in verdicts:
            worst.append((label, max(x_floor)))
        out.append(f"| {label} | " + " | ".join(f"{fmt_ns(t)} {spread(cv, name)}" for t, name in zip(times, names)) +
                   " | " + " / ".join(f"{r:.2f}" for r in x_floor) + " | " +
                   " / ".join(f"{r:.1f}" for r in x_ffi) + " |")
    return out, worst


def closure_section(runtime, prebuilt):
    """runtime, prebuilt: (medians, cvs) of bench_call and bench_call_prebuilt. Results from before the closure rows
    existed have none: the section then says so."""
    out = ["## 9. Closure calls", "",
           "Closures keep every argument and put the object in front of them: their callbacks take no context pointer "
           "(`long()`, `long(long, long)`, `long(long, long, long, long)`) and call the same out-of-line members as "
           "sections 1 and 7 (`closure/<args>/<contender>` in `bench_call` and `bench_call_prebuilt`). The floor is "
           "the context-pointer function with the same arguments (`call/<args>/floor`), and the peer a libffi closure "
           "of the same shape, whose user data is the object; both in the same process. The thunk row is the "
           "compile-time-member thunk of the same executable, for comparison. CPU time per call (median; ± is the "
           "coefficient of variation of the repetitions).", ""]
    tables = [
        ("Pages of run-time code (`bench_call`)", runtime, 0,
         [("call/floor", "floor: function taking a context pointer"),
          ("call/thunk_compile_time", "thunk, compile-time member (section 1)"),
          ("page_compile_time", "closure, compile-time member"),
          ("page_run_time", "closure, run-time member"),
          ("page_callable", "closure, callable"),
          ("libffi", "libffi closure")],
         ["page_compile_time"]),
        ("Prebuilt stubs (`bench_call_prebuilt`)", prebuilt, 1,
         [("call/floor", "floor: function taking a context pointer"),
          ("call/thunk_compile_time", "thunk on a page of prebuilt stubs, compile-time member (section 7)"),
          ("page_compile_time", "closure on a page of prebuilt stubs, compile-time member"),
          ("page_run_time", "closure on a page of prebuilt stubs, run-time member"),
          ("page_callable", "closure on a page of prebuilt stubs, callable"),
          ("unique_compile_time", "unique closure, compile-time member"),
          ("libffi", "libffi closure")],
         ["page_compile_time", "unique_compile_time"]),
    ]
    verdict_lines = []
    for title, (rows, cv), expected_prebuilt, contenders, verdicts in tables:
        out += [f"### {title}", ""]
        if not all(f"closure/{n}/{key}" in rows for n in (0, 2, 4) for key in ("page_compile_time", "libffi")):
            out += ["Not measured: these results have no closure rows (an executable built before them).", ""]
            verdict_lines.append(f"- {title}: not measured")
            continue
        table, worst = closure_table(rows, cv, contenders, verdicts)
        out += table + [""]
        valid = all(rows[f"closure/{n}/page_compile_time"].get("prebuilt", -1) == expected_prebuilt
                    for n in (0, 2, 4))
        for label, ratio in worst:
            note = "" if valid else " (**the pages were not of the expected kind: the run is invalid**)"
            verdict_lines.append(f"- {title}, {label}: {ratio:.2f}x the floor ({verdict(ratio <= 1.15)}){note}")
    out += [f"Target: {TARGETS['closure_call']}. Worst case over 0, 2 and 4 arguments:", ""]
    out += verdict_lines
    out += ["", "What each of these calls executes is in the notes (\"What a closure call executes\").", ""]
    return out


def main():
    directory, output = sys.argv[1], sys.argv[2]
    call = load(directory, "bench_call")
    context = call["context"]
    compiler = subprocess.run(["c++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    cpu = platform.processor() or "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    lines = ["# Performance", "",
             "Generated by `bench/run` (Google Benchmark; libffi as the peer); do not edit by hand. Every number is "
             "a median of repeated runs, with contenders interleaved at random in one process, and every ratio "
             "compares numbers from the same run. The machines these run on are shared: absolute times move "
             "between runs, ratios much less.", "",
             f"- Date: {datetime.date.today().isoformat()}",
             f"- Machine: {cpu}, {context.get('num_cpus')} CPUs, {platform.system()} {platform.release()}",
             f"- Compiler: {compiler}, Release (-O3 -DNDEBUG)",
             f"- Google Benchmark {context.get('library_version', '?')}, "
             f"library build type {context.get('library_build_type', '?')}", ""]
    lines += call_section(medians(call))
    lines += create_section(medians(load(directory, "bench_create")))
    lines += heap_section(medians(load(directory, "bench_heap_mode3")), medians(load(directory, "bench_heap_mode2")),
                          mprotect_pairs(directory))
    memory = load(directory, "bench_memory")
    lines += memory_section(medians(memory))
    modes = {}
    for mode in (1, 2, 3):
        data = load(directory, f"bench_unique_mode{mode}")
        modes[mode] = (medians(data), cvs(data), load_of(data))
    threaded = {}
    for mode in (2, 3):
        data = load(directory, f"bench_unique_threads_mode{mode}")
        threaded[mode] = (medians(data), cvs(data), load_of(data))
    lines += unique_cycle_section(modes, threaded)
    lines += unique_threads_section(threaded)
    prebuilt = load(directory, "bench_call_prebuilt")
    lines += prebuilt_call_section(medians(prebuilt), cvs(prebuilt))
    lines += unique_memory_section(medians(memory))
    lines += closure_section((medians(call), cvs(call)), (medians(prebuilt), cvs(prebuilt)))
    names = ["bench_call", "bench_create", "bench_heap_mode3", "bench_heap_mode2", "bench_memory",
             "bench_call_prebuilt", "bench_unique_mode1", "bench_unique_mode2", "bench_unique_mode3",
             "bench_unique_threads_mode2", "bench_unique_threads_mode3"]
    loads = [(name, load_of(load(directory, name))) for name in names]
    lines += ["## Load during this run", "",
              "The machine is shared (other builds may run): the load average (1, 5, 15 minutes) when each "
              "executable started, as Google Benchmark recorded it. Above the number of CPUs, other processes took "
              "CPU time from the benchmarks: medians and same-run ratios absorb much of it, the thread scaling "
              "rows least (see the independent-work rows).", ""]
    lines += [f"- `{name}`: {value}" for name, value in loads]
    lines.append("")
    notes = pathlib.Path(__file__).with_name("notes.md")
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    pathlib.Path(output).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
