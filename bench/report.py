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
}


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
    lines += memory_section(medians(load(directory, "bench_memory")))
    notes = pathlib.Path(__file__).with_name("notes.md")
    if notes.exists():
        lines += [notes.read_text().rstrip(), ""]
    pathlib.Path(output).write_text("\n".join(lines))


if __name__ == "__main__":
    main()
