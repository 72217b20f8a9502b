"""Quality of the shipped ONNX models on the validation and held-out test splits, against
strong baselines.

    python evaluate.py [--manifest] [--tasks sr2 sr4 restore deblur color] [--splits val test]

Runs Models/enhance/*.onnx with onnxruntime on the validation photos (data.py; each
center-cropped to at most 768x768) and on the held-out test photos (whole sources training
never reads; each scaled to about 1 MP and center-cropped to 384x384) with the degradations
users meet:
  * low resolution: Pillow Image.resize(BICUBIC) (antialiased) by 2 or 4
  * noise: additive Gaussian on 8-bit pixels, rounded and clipped (seeded)
  * JPEG: Pillow save(quality=q) (4:2:0)
  * defocus: Pillow ImageFilter.GaussianBlur(2)
  * grayscale: Pillow convert("L") (ITU-R 601 luma)
Model outputs are clamped to [0,1] and rounded to 8 bits, as a user's saved file would be.

Measures (mean over images):
  * SR: PSNR on luminance (BT.601 Y of YCbCr, 8-bit scale), a border of `scale` pixels
    left out; baseline Pillow LANCZOS (and BICUBIC) upscaling of the same input.
  * restoration / deblur: PSNR on RGB; baselines chosen per image *with the ground truth*
    (oracles): the best Gaussian-blur denoiser (sigma 0.3..3.0 step 0.05), the best unsharp
    mask (Gaussian radius 0.25..6 step 0.25, best amount by least squares, then refined).
  * colorization: run as the Swift pipeline does (EnhanceConfiguration.colorWorkingSide):
    lightness area-averaged to a long side of COLOR_SIDE, one model run, ab bilinearly
    upsampled, full-resolution lightness kept. PSNR of the ab channels (Lab units, peak 255)
    against the gray baseline (ab = 0); colorfulness (Hasler & Suesstrunk 2003) of the result
    relative to the truth's (ratio of the means). Photos whose truth is itself nearly
    monochrome (colorfulness < MONO_COLORFULNESS) are left out of both: there is no colour
    to recover and the ratio is meaningless.
With --manifest, writes the table and the training records into Models/MANIFEST-enhance.tsv.
"""
import argparse
import csv
import hashlib
import io
import json
import os
import sys

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageFilter
from scipy import ndimage
from skimage.color import lab2rgb, rgb2lab

import data
import models

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from colorize_reference import colorize_ab  # noqa: E402  (Models/, shared with the golden script)

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.dirname(HERE)
ENHANCE = os.path.join(MODELS_DIR, "enhance")
MANIFEST = os.path.join(MODELS_DIR, "MANIFEST-enhance.tsv")
MAX_SIDE = 768
COLOR_SIDE = 512  # the pipeline's default colorize working side
MONO_COLORFULNESS = 5.0

# the floors the models must clear (dB over the baseline; colorfulness ratio): on the
# validation split those of the first enhancement issue; on the held-out test split those of
# the second (harder: photographs no recipe was chosen on)
FLOORS_BY_SPLIT = {
    "val": {"sr2": 1.5, "sr4": 1.2, "restore_s25": 2.0, "restore_q20": 1.0, "deblur_g2": 1.5,
            "color_ab": 0.0, "color_ratio": 0.4},
    "test": {"sr2": 2.0, "sr4": 1.5, "restore_s25": 2.0, "restore_q20": 1.0, "deblur_g2": 1.5,
             "color_ab": 0.5, "color_ratio": 0.4},
}
FLOORS = FLOORS_BY_SPLIT["val"]


def test_images():
    return data.load_test()


def val_images():
    out = []
    for ident, im in data.load_val():
        w, h = im.size
        W, H = min(w, MAX_SIDE), min(h, MAX_SIDE)
        x0, y0 = (w - W) // 2 // 16 * 16, (h - H) // 2 // 16 * 16
        out.append((ident, im.crop((x0, y0, x0 + W, y0 + H))))
    return out


class Model:
    def __init__(self, task):
        so = ort.SessionOptions()
        so.intra_op_num_threads = 2
        self.path = os.path.join(os.environ.get("ENHANCE_MODELS", ENHANCE), models.ONNX_NAME[task])
        self.sess = ort.InferenceSession(self.path, so, providers=["CPUExecutionProvider"])

    def raw(self, x):
        return self.sess.run(["output"], {"input": x.astype(np.float32)})[0]

    def rgb(self, im):
        """PIL RGB -> PIL RGB through the network (clamped, 8-bit)."""
        x = np.asarray(im, np.float32).transpose(2, 0, 1)[None] / 255.0
        y = self.raw(x)[0].transpose(1, 2, 0)
        return Image.fromarray(np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8))


def f64(im):
    return np.asarray(im, np.float64)


def psnr(a, b, peak=255.0):
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return 10 * np.log10(peak * peak / max(mse, 1e-12))


def luma(im):
    a = f64(im) / 255.0
    return 16.0 + 65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]


def psnr_y(a, b, border):
    ya, yb = luma(a), luma(b)
    if border:
        ya, yb = ya[border:-border, border:-border], yb[border:-border, border:-border]
    return psnr(ya, yb)


def to_u8(a):
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def add_noise(im, sigma, seed):
    rng = np.random.default_rng(seed)
    return Image.fromarray(to_u8(f64(im) + rng.normal(0, sigma, f64(im).shape)))


def jpeg(im, q):
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=q)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


def gauss(a, s):
    return np.stack([ndimage.gaussian_filter(a[..., c], s, mode="reflect") for c in range(a.shape[-1])], -1)


def best_gaussian_denoiser(noisy, gt):
    a, g = f64(noisy), f64(gt)
    best = (psnr(a, g), 0.0)
    for s in np.arange(0.3, 3.0001, 0.05):
        best = max(best, (psnr(to_u8(gauss(a, s)), g), float(s)))
    return best


def best_unsharp(blurred, gt):
    b, g = f64(blurred), f64(gt)
    best = (psnr(b, g), 0.0, 0.0)
    for r in np.arange(0.25, 6.0001, 0.25):
        d = b - gauss(b, r)
        amt = float(np.sum((g - b) * d) / max(np.sum(d * d), 1e-12))
        for a in amt * np.array([0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.35, 1.5]):
            best = max(best, (psnr(to_u8(b + a * d), g), float(r), float(a)))
    return best


def colorfulness(rgb_u8):
    a = f64(rgb_u8)
    rg = a[..., 0] - a[..., 1]
    yb = 0.5 * (a[..., 0] + a[..., 1]) - a[..., 2]
    return float(np.sqrt(rg.std() ** 2 + yb.std() ** 2) + 0.3 * np.sqrt(rg.mean() ** 2 + yb.mean() ** 2))


def motion_blur(im, length=9, angle_deg=30):
    import math
    size = length | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    t = np.linspace(-0.5, 0.5, 8 * size)
    ys = np.round(c + t * (length - 1) * math.sin(math.radians(angle_deg))).astype(int)
    xs = np.round(c + t * (length - 1) * math.cos(math.radians(angle_deg))).astype(int)
    np.add.at(k, (ys, xs), 1.0)
    k /= k.sum()
    a = f64(im)
    return Image.fromarray(to_u8(np.stack([ndimage.convolve(a[..., ch], k, mode="reflect") for ch in range(3)], -1)))


# --------------------------------------------------------------------------- per task
def eval_sr(scale, imgs):
    m = Model(f"sr{scale}")
    rows = {"model": [], "lanczos": [], "bicubic": []}
    extra = {"model": [], "lanczos": []}
    for _, gt in imgs:
        w, h = gt.size
        lr = gt.resize((w // scale, h // scale), Image.BICUBIC)
        rows["model"].append(psnr_y(m.rgb(lr), gt, scale))
        rows["lanczos"].append(psnr_y(lr.resize((w, h), Image.LANCZOS), gt, scale))
        rows["bicubic"].append(psnr_y(lr.resize((w, h), Image.BICUBIC), gt, scale))
        # unknown degradation: downscaled by bilinear then mild JPEG (q 75)
        lr2 = jpeg(gt.resize((w // scale, h // scale), Image.BILINEAR), 75)
        extra["model"].append(psnr_y(m.rgb(lr2), gt, scale))
        extra["lanczos"].append(psnr_y(lr2.resize((w, h), Image.LANCZOS), gt, scale))
    mean = {k: float(np.mean(v)) for k, v in rows.items()}
    emean = {k: float(np.mean(v)) for k, v in extra.items()}
    key = f"sr{scale}"
    return [
        dict(task=key, case=f"x{scale} bicubic-downscaled, PSNR-Y", model=mean["model"], baseline="Lanczos",
             base=mean["lanczos"], floor=FLOORS[key]),
        dict(task=key, case=f"x{scale} bicubic-downscaled, PSNR-Y", model=mean["model"], baseline="bicubic",
             base=mean["bicubic"], floor=None),
        dict(task=key, case=f"x{scale} bilinear-downscaled + JPEG q75, PSNR-Y", model=emean["model"],
             baseline="Lanczos", base=emean["lanczos"], floor=None),
    ]


def eval_restore(imgs):
    m = Model("restore")
    out = []
    for sigma in (25, 10, 50):
        mv, bv, iv = [], [], []
        for k, (_, gt) in enumerate(imgs):
            noisy = add_noise(gt, sigma, seed=1000 + k)
            mv.append(psnr(m.rgb(noisy), gt))
            bv.append(best_gaussian_denoiser(noisy, gt)[0])
            iv.append(psnr(noisy, gt))
        out.append(dict(task="restore", case=f"Gaussian noise sigma {sigma}, PSNR-RGB", model=np.mean(mv),
                        baseline="oracle Gaussian blur", base=np.mean(bv),
                        floor=FLOORS["restore_s25"] if sigma == 25 else None))
        if sigma == 25:
            out.append(dict(task="restore", case="Gaussian noise sigma 25, PSNR-RGB", model=np.mean(mv),
                            baseline="noisy input", base=np.mean(iv), floor=None))
    for q in (20, 10, 50):
        mv, iv = [], []
        for _, gt in imgs:
            c = jpeg(gt, q)
            mv.append(psnr(m.rgb(c), gt))
            iv.append(psnr(c, gt))
        out.append(dict(task="restore", case=f"JPEG quality {q}, PSNR-RGB", model=np.mean(mv),
                        baseline="compressed input", base=np.mean(iv),
                        floor=FLOORS["restore_q20"] if q == 20 else None))
    mv, iv = [], []
    for k, (_, gt) in enumerate(imgs):
        c = jpeg(add_noise(gt, 10, seed=2000 + k), 60)
        mv.append(psnr(m.rgb(c), gt))
        iv.append(psnr(c, gt))
    out.append(dict(task="restore", case="noise sigma 10 then JPEG q60, PSNR-RGB", model=np.mean(mv),
                    baseline="degraded input", base=np.mean(iv), floor=None))
    mv = [psnr(m.rgb(gt), gt) for _, gt in imgs]
    out.append(dict(task="restore", case="clean input (should stay unharmed), PSNR-RGB", model=np.mean(mv),
                    baseline="-", base=float("nan"), floor=None))
    return out


def eval_deblur(imgs):
    m = Model("deblur")
    out = []
    cases = [("Pillow GaussianBlur(2), PSNR-RGB", lambda im: im.filter(ImageFilter.GaussianBlur(2)), FLOORS["deblur_g2"]),
             ("Pillow GaussianBlur(1), PSNR-RGB", lambda im: im.filter(ImageFilter.GaussianBlur(1)), None),
             ("motion blur 9 px at 30 deg, PSNR-RGB", motion_blur, None)]
    for name, fn, floor in cases:
        mv, bv, iv = [], [], []
        for _, gt in imgs:
            b = fn(gt)
            mv.append(psnr(m.rgb(b), gt))
            bv.append(best_unsharp(b, gt)[0])
            iv.append(psnr(b, gt))
        out.append(dict(task="deblur", case=name, model=np.mean(mv), baseline="oracle unsharp mask",
                        base=np.mean(bv), floor=floor))
        out.append(dict(task="deblur", case=name, model=np.mean(mv), baseline="blurred input",
                        base=np.mean(iv), floor=None))
    mv = [psnr(m.rgb(gt), gt) for _, gt in imgs]
    out.append(dict(task="deblur", case="sharp input (should stay unharmed), PSNR-RGB", model=np.mean(mv),
                    baseline="-", base=float("nan"), floor=None))
    out.append(dict(task="deblur", case="sharp input, the worst photo, PSNR-RGB", model=np.min(mv),
                    baseline="-", base=float("nan"), floor=None))
    return out


def eval_color(imgs):
    m = Model("color")
    pv, gv, cm, cg, skipped = [], [], [], [], []
    for ident, gt in imgs:
        if data.is_gray(ident) or colorfulness(gt) < MONO_COLORFULNESS:
            skipped.append(ident)
            continue
        gray = gt.convert("L")
        g3 = np.repeat(f64(gray)[..., None] / 255.0, 3, -1)
        L = rgb2lab(g3)[..., 0]
        ab_gt = rgb2lab(f64(gt) / 255.0)[..., 1:]
        ab = np.clip(colorize_ab(m.raw, L, COLOR_SIDE, 16), -128, 127)
        rgb = to_u8(lab2rgb(np.concatenate([L[..., None], ab], -1)) * 255.0)
        pv.append(psnr(ab, ab_gt))
        gv.append(psnr(np.zeros_like(ab_gt), ab_gt))
        cm.append(colorfulness(rgb))
        cg.append(colorfulness(gt))
    ratio = float(np.mean(cm) / np.mean(cg))
    if skipped:
        print(f"colorization: left out (monochrome truth): {', '.join(skipped)}")
    return [
        dict(task="color", case=f"ab PSNR (Lab units, peak 255), side {COLOR_SIDE}", model=np.mean(pv), baseline="gray (ab = 0)",
             base=np.mean(gv), floor=FLOORS["color_ab"]),
        dict(task="color", case="colorfulness (Hasler-Suesstrunk), model / truth", model=np.mean(cm),
             baseline="ground truth", base=np.mean(cg), floor=None, ratio=ratio, ratio_floor=FLOORS["color_ratio"]),
    ]


def fmt_row(r):
    if r.get("ratio") is not None:
        ok = r["ratio"] >= r["ratio_floor"]
        return (f"{r['task']:8s} {r['case']:52s} {r['model']:8.2f} {r['baseline']:22s} {r['base']:8.2f} "
                f"ratio {r['ratio']:.2f} (floor {r['ratio_floor']:.2f}) {'PASS' if ok else 'FAIL'}")
    gain = r["model"] - r["base"]
    s = f"{r['task']:8s} {r['case']:52s} {r['model']:8.2f} {r['baseline']:22s} {r['base']:8.2f} {gain:+6.2f} dB"
    if r["floor"] is not None:
        s += f" (floor {r['floor']:+.1f}) {'PASS' if gain >= r['floor'] else 'FAIL'}"
    return s


def summary(task, rows):
    parts = []
    for r in rows:
        if r["task"] != task:
            continue
        if r.get("ratio") is not None:
            parts.append(f"{r['case']}: {r['model']:.1f} vs {r['base']:.1f} (ratio {r['ratio']:.2f}, floor {r['ratio_floor']:.2f})")
        elif r["baseline"] == "-":
            parts.append(f"{r['case']}: {r['model']:.2f} dB")
        else:
            parts.append(f"{r['case']}: {r['model']:.2f} vs {r['baseline']} {r['base']:.2f} "
                         f"({r['model'] - r['base']:+.2f} dB" + (f", floor {r['floor']:+.1f})" if r["floor"] is not None else ")"))
    return "; ".join(parts)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


COLUMNS = ["file", "sha256", "bytes", "params", "task", "io", "training_data", "command",
           "training_time_s", "quality_on_validation", "quality_on_test"]


def write_manifest(rows_by_split, tasks):
    old = {}
    if os.path.exists(MANIFEST):
        with open(MANIFEST) as f:
            for r in csv.DictReader(f, delimiter="\t"):
                old[r["file"]] = r
    runs = os.path.join(HERE, "runs")
    out = []
    for task in models.TASKS:
        fname = "enhance/" + models.ONNX_NAME[task]
        path = os.path.join(MODELS_DIR, fname)
        if not os.path.exists(path):
            continue
        prev = old.get(fname, {})
        rec = dict(prev)
        rec["file"] = fname
        rec["sha256"] = sha256(path)
        rec["bytes"] = str(os.path.getsize(path))
        tj = os.path.join(runs, task + ".json")
        ej = os.path.join(runs, task + ".export.json")
        if os.path.exists(ej):
            e = json.load(open(ej))
            rec["params"] = str(e["params"])
            rec["io"] = e["io"]
            rec["task"] = e["task_name"]
        if os.path.exists(tj):
            t = json.load(open(tj))
            phases = t.get("phases") or [t["config"]]
            steps = " then ".join(
                f"{p['iters']} iterations x batch {p['batch']} x patch {p['patch']}"
                + (f" (+{p['margin']} px context)" if p.get("margin") else "")
                + (f", {p['mix']} mix" if p.get("mix") else "") + (", MSE" if p.get("loss") == "l2" else "")
                + (f", weight EMA {p['ema']:g}" if p.get("ema") else "")
                + f", lr {p['lr']:g}" for p in phases)
            rec["training_data"] = t["data"] + f"; torch {t['torch']}; {steps}; seed {t['seed']}"
            rec["command"] = f"bash Models/train/train_all.sh (= {t['command']} in Models/train, then export.py, evaluate.py)"
            rec["training_time_s"] = str(t["train_time_s"]) + f" ({t['threads']} threads)"
        if task in tasks:
            for split, col in (("val", "quality_on_validation"), ("test", "quality_on_test")):
                if split in rows_by_split:
                    rec[col] = summary(task, rows_by_split[split])
        out.append(rec)
    with open(MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n", extrasaction="ignore")
        w.writeheader()
        for r in out:
            w.writerow({k: str(r.get(k, "")).replace("\t", " ") for k in COLUMNS})
    print("wrote", MANIFEST)


def main():
    global FLOORS
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", nargs="*", default=models.TASKS)
    ap.add_argument("--splits", nargs="*", default=["val", "test"], choices=["val", "test"])
    ap.add_argument("--manifest", action="store_true")
    args = ap.parse_args()
    rows_by_split, failed = {}, []
    for split in args.splits:
        FLOORS = FLOORS_BY_SPLIT[split]
        if split == "val":
            imgs = val_images()
            print(f"== validation: {len(imgs)} photos ({', '.join(i for i, _ in imgs)}), center crops <= {MAX_SIDE} px")
        else:
            imgs = test_images()
            print(f"== held-out test ({', '.join(data.TEST_SOURCES)}): {len(imgs)} photos, about 1 MP, "
                  f"center {data.TEST_CROP}x{data.TEST_CROP}")
        rows = []
        for t in args.tasks:
            if t == "sr2":
                r = eval_sr(2, imgs)
            elif t == "sr4":
                r = eval_sr(4, imgs)
            elif t == "restore":
                r = eval_restore(imgs)
            elif t == "deblur":
                r = eval_deblur(imgs)
            else:
                r = eval_color(imgs)
            for x in r:
                print(split.ljust(5), fmt_row(x), flush=True)
            rows += r
        rows_by_split[split] = rows
        failed += [(split, r) for r in rows if (r.get("ratio") is not None and r["ratio"] < r["ratio_floor"]) or
                   (r.get("ratio") is None and r["floor"] is not None and r["model"] - r["base"] < r["floor"])]
    print("all floors met" if not failed else f"{len(failed)} floor(s) missed: " +
          "; ".join(f"{sp} {r['task']} {r['case']}" for sp, r in failed))
    if args.manifest:
        write_manifest(rows_by_split, args.tasks)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
