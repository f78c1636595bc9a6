#!/usr/bin/env python3
"""The sorter on a photo folder's test split, checked against `finch run` and `finch_run`.

    bench/sorter_check.py PROGRAM.finch DATA_DIR [--bin build/bin] [--threads 1] [--threshold 0]

DATA_DIR/test/<class>/*.jpg (scripts/cifar-folders.sh makes one). The sorter copies every test
image (--copy, so the folder stays as it is) into fresh bins; its decisions are compared with
`finch run --predictions` (the training-side data pipeline) and with `finch_run` (the other
runtime-only runner) image by image. Prints the agreement counts, the sorter's throughput
(wall clock over the whole run, file copies and fsyncs included) and its latency_ms p50/p90
(decode + preprocess + classify per image), with the load average beside them.
"""
import argparse, csv, json, os, shutil, subprocess, sys, tempfile, time


def test_files(data):
    """DATA/test/<class>/* in ImageFolder order (classes by name, files by name: finch run's order)."""
    test = os.path.join(data, "test")
    classes = sorted(d for d in os.listdir(test) if os.path.isdir(os.path.join(test, d)))
    files = [os.path.join(test, c, f) for c in classes for f in sorted(os.listdir(os.path.join(test, c)))]
    return classes, files


def check(program, data, bin_dir="build/bin", threads="1", threshold="0"):
    """Runs finch run --predictions, finch_run and the sorter (--copy into fresh bins) over the test
    split; returns the counts and timings as a dict (also used by bench/seed004_table.py --sorter)."""
    classes, files = test_files(data)
    work = tempfile.mkdtemp(prefix="sorter_check_")
    pred = os.path.join(work, "pred.csv")
    subprocess.run([os.path.join(bin_dir, "finch"), "run", program, "--dataset", "folder", "--data", data,
                    "--predictions", pred, "--threads", threads, "--latency-images", "1"],
                   check=True, stdout=subprocess.DEVNULL)
    with open(pred) as f:
        rows = list(csv.DictReader(f))
    meta = subprocess.run([os.path.join(bin_dir, "finch_run"), program] + files + ["--threads", threads],
                          check=True, capture_output=True, text=True).stdout.splitlines()
    fr = {line.split("\t")[0]: int(line.split("\t")[1]) for line in meta}
    listing = os.path.join(work, "list.txt")
    with open(listing, "w") as f:
        f.write("\n".join(files) + "\n")
    load = os.getloadavg()
    t0 = time.perf_counter()
    out = subprocess.run([os.path.join(bin_dir, "sorter"), "--program", program, "--list", listing, "--bins",
                          os.path.join(work, "bins"), "--copy", "--threshold", threshold, "--threads", threads],
                         check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - t0
    lines = [json.loads(l) for l in out.splitlines() if l.strip()]
    assert len(lines) == len(files) == len(rows), (len(lines), len(files), len(rows))
    same_run = sum(1 for l, r in zip(lines, rows) if l["class"] == classes[int(r["predicted"])])
    same_fr = sum(1 for l in lines if l["class"] == classes[fr[l["file"]]])
    correct = sum(1 for l in lines if l["class"] == os.path.basename(os.path.dirname(l["file"])))
    lat = sorted(l["latency_ms"] for l in lines)
    pct = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
    shutil.rmtree(work, ignore_errors=True)
    return {"images": len(lines), "same_as_finch_run": same_run, "same_as_finch_run_tool": same_fr,
            "correct": correct, "accuracy": correct / len(lines), "wall_s": wall,
            "images_per_s": len(lines) / wall, "latency_ms_p50": pct(0.5), "latency_ms_p90": pct(0.9),
            "threads": threads, "load": load}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("program")
    ap.add_argument("data")
    ap.add_argument("--bin", default="build/bin")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--threshold", default="0")
    a = ap.parse_args()
    r = check(a.program, a.data, a.bin, a.threads, a.threshold)
    n, load = r["images"], r["load"]
    print(f"images {n}: sorter == finch run on {r['same_as_finch_run']}, sorter == finch_run on "
          f"{r['same_as_finch_run_tool']}, correct {r['correct']} ({100.0 * r['accuracy']:.1f}%)")
    print(f"sorter: {r['images_per_s']:.1f} images/s over {r['wall_s']:.2f} s (copy + fsync per file included), "
          f"latency_ms p50 {r['latency_ms_p50']:.3f} p90 {r['latency_ms_p90']:.3f}, threads {a.threads}, "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0 if r["same_as_finch_run"] == r["same_as_finch_run_tool"] == n else 1


if __name__ == "__main__":
    sys.exit(main())
