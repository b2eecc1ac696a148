#!/usr/bin/env python3
"""Writes data/digits.csv and data/diabetes.csv from the copies bundled with scikit-learn.

No network: the gzipped CSV files are read from the installed sklearn package (Debian's
python3-sklearn puts them in /usr/lib/python3/dist-packages/sklearn/datasets/data/). Each output
has a header row so that minigrad's read_csv can name the label column.

    /usr/bin/python3 tools/make_example_data.py            # writes into data/
"""
import csv
import gzip
import os
import sys

import sklearn.datasets

SOURCE = os.path.join(os.path.dirname(sklearn.datasets.__file__), "data")
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")


def read_rows(name, delimiter):
    with gzip.open(os.path.join(SOURCE, name), "rt") as f:
        return [line.split(delimiter) if delimiter else line.split() for line in f.read().splitlines() if line.strip()]


def number(text):
    # Keep integers as integers ("151", not "1.51e+02"); anything else as Python's shortest repr.
    value = float(text)
    return str(int(value)) if value.is_integer() else repr(value)


def write(name, header, rows):
    path = os.path.join(OUT, name)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
    print(f"wrote {os.path.normpath(path)}: {len(rows)} rows, {len(header)} columns")


def main():
    # digits.csv.gz: 1797 rows of 64 pixel counts (0..16) then the digit.
    digits = read_rows("digits.csv.gz", ",")
    assert len(digits) == 1797 and all(len(r) == 65 for r in digits), "unexpected digits.csv.gz"
    write("digits.csv", [f"p{i}" for i in range(64)] + ["label"], [[number(v) for v in r] for r in digits])

    # diabetes: the raw (unscaled) features, whitespace-separated, and the target in its own file.
    features = read_rows("diabetes_data_raw.csv.gz", None)
    targets = read_rows("diabetes_target.csv.gz", None)
    assert len(features) == len(targets) == 442 and all(len(r) == 10 for r in features), "unexpected diabetes files"
    header = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]
    write("diabetes.csv", header, [[number(v) for v in f] + [number(t[0])] for f, t in zip(features, targets)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
