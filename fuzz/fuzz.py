#!/usr/bin/env python3
"""Random-mutation fuzzer for the kiln binary: check, dump, run, the REPL, and data files.

Seeds are every .model under tests/golden/, programs/ and fuzz/corpus/ (and the REPL
transcripts' entries). Each input is a seed mutated a few times (byte edits, tokens from the
language inserted, lines duplicated or spliced from another seed, numbers made huge, long runs of
one token); it is run under an address-space limit and a wall-clock limit. A finding is a signal
death, Rust's panic exit (101), an abort message ("memory allocation of", "panicked at"), or a
hang (the wall-clock limit on check/dump/REPL, which must always finish quickly). `run` may
legitimately train for long, so its timeouts are counted apart and kept for reading. The `data`
mode runs an example program for one epoch on a mutated copy of one of its data files (cells made
empty, NaN, huge, text or quoted; lines dropped, repeated or cut; bytes flipped in archives).

Usage: python3 fuzz/fuzz.py --bin target/release/kiln --minutes 30 --out /tmp/kiln-fuzz
Results: OUT/summary.json (counts per mode and outcome) and OUT/findings/ (inputs that failed).
"""
import argparse, glob, json, os, random, re, resource, shutil, signal, subprocess, sys, time

TOKENS = [
    "model", "fit", "data", "let", "layer", "fn", "on", "->", "=>", "{", "}", "(", ")", "[", "]",
    ",", ":", "=", "+", "-", "*", "/", "@", "**", "B", "f32", "i32", "dense", "relu", "softmax",
    "sigmoid", "dropout", "conv2d", "max_pooling2d", "flatten", "embedding", "batch_normalization",
    "grad", "sum", "mean", "reshape", "transpose", "epochs", "batch", "loss", "optimizer", "adam",
    "sgd", "metrics", "callbacks", "checkpoint", "validation_split", "save", "load", "evaluate",
    "predict", "synthetic_classification", "csv", "idx", "npy", "0", "1", "-1", "1e38", "1e-45",
    "NaN", "inf", "99999999999999999999", "4294967296", "2097152", "0.5", '"', '"x.csv"', "#",
    "\n", " ", "\t", "$", "\u00e9", "\U0001F600", "\x00", "\r",
]
REPL_EXTRA = [":type ", ":fit ", ":load ", ":help", ":reset", ":vars", "zeros(3, 3)",
              "randn(4, seed: 1)", "let x = ones(2, 2)", "x @ x", "grad(fn(v: f32[3]) -> f32[] { sum(v * v) })"]

def seeds(root):
    files = []
    for pat in ("tests/golden/**/*.model", "programs/*.model", "fuzz/corpus/*.model"):
        files += glob.glob(os.path.join(root, pat), recursive=True)
    out = []
    for f in sorted(files):
        with open(f, "rb") as h:
            out.append(h.read())
    repl = []
    for f in glob.glob(os.path.join(root, "tests/golden/repl/*.txt")):
        for line in open(f, encoding="utf-8", errors="replace"):
            if line.startswith(">>> ") or line.startswith("... "):
                repl.append(line[4:].rstrip("\n"))
    return out, repl

def mutate(rng, data, corpus):
    data = bytearray(data)
    for _ in range(rng.choice([1, 1, 2, 3, 5, 8])):
        k = rng.randrange(10)
        pos = rng.randrange(len(data) + 1)
        if k == 0 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif k == 1:  # insert a token
            data[pos:pos] = rng.choice(TOKENS).encode()
        elif k == 2 and data:  # delete a range
            del data[pos:pos + rng.randrange(1, 40)]
        elif k == 3:  # duplicate a line many times
            lines = bytes(data).split(b"\n")
            i = rng.randrange(len(lines))
            lines[i:i] = [lines[i]] * rng.choice([2, 10, 200])
            data = bytearray(b"\n".join(lines))
        elif k == 4:  # splice lines of another seed
            other = rng.choice(corpus).split(b"\n")
            a = rng.randrange(len(other))
            data[pos:pos] = b"\n".join(other[a:a + rng.randrange(1, 8)]) + b"\n"
        elif k == 5:  # make a number huge, zero or negative
            nums = [m.span() for m in re.finditer(rb"\d+(\.\d+)?", bytes(data))]
            if nums:
                a, b = rng.choice(nums)
                data[a:b] = rng.choice([b"0", b"-1", b"1e30", b"4294967297", b"18446744073709551617", b"2097152", b"65536"])
        elif k == 6:  # a long run of one token (long lines, many errors, deep nesting)
            data[pos:pos] = rng.choice(TOKENS).encode() * rng.choice([100, 2000, 20000])
        elif k == 7 and data:  # truncate
            data = data[:pos]
        elif k == 8:  # swap two lines
            lines = bytes(data).split(b"\n")
            i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\n".join(lines))
        else:  # a long identifier (did-you-mean, rendering)
            data[pos:pos] = b"x" * rng.choice([1000, 50000])
    # Inputs stay under 1 MB: the point is odd structure, not sheer size (the adversarial tests
    # cover size, each with its own bound).
    return bytes(data[:1 << 20])

# Example programs whose data is small enough to mutate and train on for an epoch.
DATA_PROGRAMS = ["iris", "digits", "penguins", "penguins_categories", "co2", "seq_embed", "topics"]
CELLS = [b"", b"NaN", b"inf", b"-inf", b"1e39", b"-1e-45", b"abc", b'"', b'"a,""b"', b"\xff\xfe",
         "\u00e9".encode(), b"99999999999999999999", b"0x10", b" 1 ", b"-0", b"1,2", b"\t"]

def mutate_data(rng, data, corpus):
    """A CSV is mutated cell by cell and line by line; anything else byte by byte."""
    if data[:1] in (b"\x93", b"PK") or b"\x00" in data[:512]:
        return mutate(rng, data, corpus)[: 8 << 20]
    lines = data.split(b"\n")
    for _ in range(rng.choice([1, 1, 2, 4, 16])):
        k, i = rng.randrange(6), rng.randrange(len(lines))
        if k <= 1:  # a cell replaced
            cells = lines[i].split(b",")
            cells[rng.randrange(len(cells))] = rng.choice(CELLS)
            lines[i] = b",".join(cells)
        elif k == 2:  # a line dropped or cut short
            lines[i] = lines[i][: rng.randrange(len(lines[i]) + 1)] if rng.random() < 0.5 else b""
        elif k == 3:  # a line repeated
            lines[i:i] = [lines[i]] * rng.choice([2, 100, 5000])
        elif k == 4:  # a column more or fewer
            lines[i] = lines[i] + b",7" if rng.random() < 0.5 else lines[i].rsplit(b",", 1)[0]
        else:
            return mutate(rng, b"\n".join(lines), corpus)[: 8 << 20]
    sep = rng.choice([b"\n"] * 8 + [b"\r\n", b"\r"])
    return sep.join(lines)[: 8 << 20]

def data_input(rng, root, work, corpus):
    """An example program for one epoch, its data copied into WORK with one file mutated."""
    src = open(os.path.join(root, "programs", rng.choice(DATA_PROGRAMS) + ".model"), "rb").read()
    src = re.sub(rb"epochs(\s+)\d+", rb"epochs\g<1>1", src)
    files = sorted(set(re.findall(rb'"(data/[^"]+)"', src)))
    shutil.rmtree(os.path.join(work, "data"), ignore_errors=True)
    for f in files:
        dest = os.path.join(work, f.decode())
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(os.path.join(root, "programs", f.decode()), dest)
    if files:
        victim = os.path.join(work, rng.choice(files).decode())
        data = open(victim, "rb").read()
        open(victim, "wb").write(mutate_data(rng, data, corpus))
    return src

def limits(mem_mb):
    def f():
        os.setpgrp()
        resource.setrlimit(resource.RLIMIT_AS, (mem_mb << 20, mem_mb << 20))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 20, 64 << 20))
    return f

def run_one(argv, stdin, timeout, mem_mb, cwd):
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         preexec_fn=limits(mem_mb), cwd=cwd)
    try:
        out, err = p.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return "timeout", out, err
    if p.returncode < 0:
        return "signal%d" % -p.returncode, out, err
    if p.returncode == 101 or b"panicked at" in err or b"memory allocation of" in err:
        return "panic", out, err
    if p.returncode == 0:
        return "ok", out, err
    return "error", out, err

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--out", default="/tmp/kiln-fuzz")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--mem-mb", type=int, default=4096)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    kiln = os.path.abspath(a.bin)
    corpus, repl_lines = seeds(root)
    rng = random.Random(a.seed)
    os.makedirs(os.path.join(a.out, "findings"), exist_ok=True)
    work = os.path.join(a.out, "work")
    os.makedirs(work, exist_ok=True)
    counts, n, end = {}, 0, time.time() + a.minutes * 60
    modes = ["check"] * 5 + ["dump"] * 2 + ["run"] * 2 + ["repl"] * 2 + ["data"] * 2
    while time.time() < end:
        n += 1
        mode = rng.choice(modes)
        src = mutate(rng, rng.choice(corpus), corpus)
        path = os.path.join(work, "input.model")
        stdin, timeout = b"", 20
        if mode == "data":
            src = data_input(rng, root, work, corpus)
            argv, timeout = [kiln, "run", "-q", path], 60
        elif mode == "check":
            argv = [kiln, "check", path] + rng.choice([[], ["--summary"], ["--format", "json"]])
        elif mode == "dump":
            argv = [kiln, "dump", "--stage", rng.choice(["parse", "check", "ir", "grad", "opt", "kernels"]), path]
        elif mode == "run":
            argv, timeout = [kiln, "run", "-q", path], 30
        else:
            argv = [kiln, "repl"]
            lines = [rng.choice(repl_lines) for _ in range(rng.randrange(1, 8))]
            lines = [mutate(rng, l.encode(), corpus).replace(b"\n", b" ") if rng.random() < 0.5 else l.encode() for l in lines]
            if rng.random() < 0.3:
                lines += [rng.choice(REPL_EXTRA).encode()]
            if rng.random() < 0.3:
                lines.insert(0, src)  # a whole program as a multi-line entry
            stdin = b"\n".join(lines) + b"\n"
        with open(path, "wb") as h:
            h.write(src)
        outcome, out, err = run_one(argv, stdin, timeout, a.mem_mb, work)
        if mode in ("run", "data") and outcome == "timeout":
            outcome = "run-timeout"
        elif outcome == "timeout":
            # The machine may be shared: a hang hangs again with three times the time, while an
            # input that was only starved finishes. Both are kept for reading.
            again, _, _ = run_one(argv, stdin, timeout * 3, a.mem_mb, work)
            if again != "timeout":
                outcome = "timeout-then-" + again
        key = "%s:%s" % (mode, outcome)
        counts[key] = counts.get(key, 0) + 1
        if outcome not in ("ok", "error"):
            d = os.path.join(a.out, "findings", "%06d-%s-%s" % (n, mode, outcome))
            os.makedirs(d, exist_ok=True)
            open(os.path.join(d, "input.model"), "wb").write(src)
            open(os.path.join(d, "stdin"), "wb").write(stdin)
            open(os.path.join(d, "argv"), "w").write(" ".join(argv[1:]) + "\n")
            open(os.path.join(d, "stderr"), "wb").write(err[-20000:])
            if mode == "data":
                shutil.copytree(os.path.join(work, "data"), os.path.join(d, "data"))
        if n % 100 == 0:
            json.dump({"inputs": n, "counts": counts}, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    json.dump({"inputs": n, "counts": counts, "done": True}, open(os.path.join(a.out, "summary.json"), "w"), indent=1)
    print(json.dumps({"inputs": n, "counts": counts}, indent=1))

if __name__ == "__main__":
    main()
