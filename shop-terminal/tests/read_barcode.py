"""Independent barcode reader for the slip tests: decode a PGM image with zxing-cpp.

Usage: read_barcode.py IMAGE.pgm  ->  prints "<format> <text>" for each barcode found.
"""
import sys

import numpy as np
import zxingcpp


def read_pgm(path):
    data = open(path, "rb").read()
    # P5 header: magic, width, height, maxval, each separated by whitespace.
    parts = data.split(maxsplit=4)
    assert parts[0] == b"P5", "not a binary PGM"
    w, h = int(parts[1]), int(parts[2])
    pixels = parts[4][: w * h]
    return np.frombuffer(pixels, dtype=np.uint8).reshape((h, w))


for r in zxingcpp.read_barcodes(read_pgm(sys.argv[1])):
    print(r.format.name, r.text)
