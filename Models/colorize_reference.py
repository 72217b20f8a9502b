"""The colorize pipeline's working-size path in numpy, as SwiftONNXEnhance computes it
(ColorizeWhole.swift): lightness area-averaged to a long side of at most `side`, reflection-padded
to the model's size multiple, one model run, ab bilinearly upsampled (half-pixel centres, edges
clamped). Shared by Models/train/evaluate.py (quality figures) and
Tests/EnhanceTests/Resources/make_golden.py (golden outputs). numpy only.
"""
import numpy as np


def area_matrix(n, m):
    """m x n matrix averaging source cells [o*r, (o+1)*r) (r = n/m) into each of m cells."""
    r = n / m
    A = np.zeros((m, n))
    for o in range(m):
        a, b = o * r, (o + 1) * r
        for i in range(int(np.floor(a)), min(n, int(np.ceil(b)))):
            A[o, i] = (min(b, i + 1) - max(a, i)) / r
    return A


def bilinear_matrix(m, n):
    """n x m matrix: bilinear (half-pixel centres, edges clamped) from m cells to n."""
    B = np.zeros((n, m))
    for x in range(n):
        u = min(max((x + 0.5) * m / n - 0.5, 0.0), m - 1)
        i0 = int(np.floor(u)); i1 = min(i0 + 1, m - 1); t = u - i0
        B[x, i0] += 1 - t; B[x, i1] += t
    return B


def working_size(w, h, side):
    if side <= 0 or max(w, h) <= side:
        return w, h
    s = side / max(w, h)
    return max(1, int(round(w * s))), max(1, int(round(h * s)))


def colorize_ab(run, L, side, mult=16):
    """L: H x W lightness (0..100). run: (1x1xhxw float32) -> (1x2xhxw). Returns H x W x 2 ab."""
    H, W = L.shape
    ww, wh = working_size(W, H, side)
    Lw = area_matrix(H, wh) @ L @ area_matrix(W, ww).T
    ph, pw = -wh % mult, -ww % mult
    x = (Lw / 100.0).astype(np.float32)[None, None]
    if ph or pw:
        x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect")
    y = run(x)[0][:, :wh, :ww].astype(np.float64) * 128.0
    By, Bx = bilinear_matrix(wh, H), bilinear_matrix(ww, W)
    return np.stack([By @ y[c] @ Bx.T for c in range(2)], -1)
