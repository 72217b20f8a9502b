"""Train one enhancement model.

    python train.py --task {sr2,sr4,restore,deblur,color} [--iters N] [--out runs/]

Fixed seeds and a fixed iteration count make a run reproducible (CPU, 2 threads). Writes
runs/<task>.pt (state dict) and runs/<task>.json (iterations, time, losses, data).
Degradations are synthesized on the fly from the clean training photos (data.py).
"""
import argparse
import copy
import io
import json
import math
import os
import sys
import time

import numpy as np

# on a shared machine, spinning OpenMP workers slow training several times over
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F
from PIL import Image, ImageFilter
from scipy import ndimage

import data
import models

HERE = os.path.dirname(os.path.abspath(__file__))

# per task: iterations, batch, patch (network input size), learning rate
CONFIG = {
    "sr2": dict(iters=3000, batch=16, patch=64, lr=2e-3),
    "sr4": dict(iters=5000, batch=16, patch=48, lr=2e-3),
    # restoration in three phases: the mix; then a JPEG-heavier mix at a lower learning rate with
    # an MSE loss (PSNR is what is measured) and the loss on the patch interior only (margin:
    # the network sees patch + 2 margin pixels, the loss reads the central patch); then larger
    # patches at a lower rate
    "restore": [dict(iters=8000, batch=16, patch=64, lr=2e-3),
                dict(iters=2500, lr=5e-4, mix="jpeg", loss="l2", margin=8),
                dict(iters=1500, lr=2.5e-4, mix="jpeg", loss="l2", margin=8, patch=96)],
    # deblur: L1 on the mix, then MSE, then MSE on larger patches (DeblurData always crops
    # MARGIN pixels of real context around each patch, so the 15x15 linear path sees no edges).
    # A fourth MSE phase (2500 it, lr 2e-4, patch 96) was measured and gained nothing; a fourth
    # phase with the per-patch log-MSE (the per-photo PSNR the evaluation averages) gained 0.08 dB
    # on validation and keeps sharp inputs closer to themselves.
    "deblur": [dict(iters=5000, batch=16, patch=64, lr=2e-3),
               dict(iters=2000, lr=5e-4, loss="l2"),
               dict(iters=2000, lr=3e-4, loss="l2", patch=96),
               dict(iters=800, lr=1e-4, loss="logmse", patch=96)],
    # color: MSE (the conditional mean, so never worse than gray on the training distribution;
    # L1 gave a flat median-like sepia), weights averaged (EMA 0.995) because the validation
    # figures swing from one hundred iterations to the next on 23 photos; then the per-crop
    # log-MSE (the per-photo PSNR the evaluation averages: colour painted into a muted scene costs
    # as much as a wrong hue in a vivid one), without the output gain (gain_target None)
    "color": [dict(iters=2400, batch=16, patch=128, lr=1e-3, loss="l2", ema=0.995),
              dict(iters=800, lr=3e-4, loss="logmse", gain_target=None)],
}


def to_tensor(batch_u8):
    """list of HxWxC uint8 -> N x C x H x W float in [0,1]."""
    a = np.stack(batch_u8).astype(np.float32) / 255.0
    if a.ndim == 3:
        a = a[..., None]
    return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous()


def augment(rng, *arrs, rotate=True):
    """The same random mirror (and, with rotate, 90-degree rotation) of each array."""
    k = rng.integers(4) if rotate else 0
    flip = rng.integers(2)
    out = []
    for a in arrs:
        a = np.rot90(a, k)
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return out


class Sampler:
    """Picks a training image for each patch with probability proportional to the square root of
    its area: a large copy gets more patches than a small one, but not so many that the 2048-px
    copies of the large photographs crowd out the web-sized ones."""

    def __init__(self, images, rng):
        self.images = images
        self.rng = rng
        side = np.sqrt(np.array([im.shape[0] * im.shape[1] for im in images], dtype=np.float64))
        self.p = side / side.sum()

    def index(self):
        return self.rng.choice(len(self.images), p=self.p)

    def crop(self, im, size, align=1):
        h, w = im.shape[:2]
        y = self.rng.integers(0, (h - size) // align + 1) * align
        x = self.rng.integers(0, (w - size) // align + 1) * align
        return y, x


def jpeg(u8, q):
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=int(q))
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def add_noise(rng, u8, sigma):
    return np.clip(np.round(u8.astype(np.float32) + rng.normal(0, sigma, u8.shape)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- super-resolution
class SRData:
    """LR made by antialiased downscaling of the whole training photo: mostly Pillow BICUBIC
    (the canonical degradation), sometimes bilinear / Lanczos / box, sometimes a slightly
    blurred source or a mild JPEG, so unknown real degradations are met too."""

    FILTERS = [Image.BICUBIC, Image.BILINEAR, Image.LANCZOS, Image.BOX]

    def __init__(self, images, scale, rng):
        self.s = scale
        self.rng = rng
        self.hr = images
        self.lr = []
        for im in images:
            pil = Image.fromarray(im)
            size = (im.shape[1] // scale, im.shape[0] // scale)
            self.lr.append([np.asarray(pil.resize(size, f)) for f in self.FILTERS]
                           + [np.asarray(pil.filter(ImageFilter.GaussianBlur(0.6 * scale / 2)).resize(size, Image.BICUBIC))])
        self.sampler = Sampler(images, rng)

    def batch(self, n, p):
        rng, s = self.rng, self.s
        xs, ys = [], []
        for _ in range(n):
            i = self.sampler.index()
            lrs = self.lr[i]
            y, x = self.sampler.crop(lrs[0], p)
            u = rng.random()
            k = 0 if u < 0.7 else int(rng.integers(1, len(lrs)))
            lr = lrs[k][y:y + p, x:x + p]
            if rng.random() < 0.1:
                lr = jpeg(np.ascontiguousarray(lr), rng.integers(60, 96))
            hr = self.hr[i][s * y:s * (y + p), s * x:s * (x + p)]
            lr, hr = augment(rng, lr, hr)
            xs.append(lr)
            ys.append(hr)
        return to_tensor(xs), to_tensor(ys)


# ---------------------------------------------------------------- restoration
class RestoreData:
    """Gaussian noise on 8-bit pixels (sigma 5..50, clipped), JPEG (quality 10..60, more
    often low: strong JPEG is the harder half of the task), both in sequence, and mild
    versions of each. mix="jpeg" (the second phase) gives JPEG a larger share."""

    # cumulative shares: noise, JPEG, noise then JPEG, mild (the rest is clean)
    MIXES = {"base": (0.30, 0.75, 0.87, 0.97), "jpeg": (0.15, 0.75, 0.87, 0.97)}

    def __init__(self, images, rng, mix="base"):
        self.images = images
        self.rng = rng
        self.sampler = Sampler(images, rng)
        self.mix = self.MIXES[mix]

    def degrade(self, u8):
        rng = self.rng
        u = rng.random()
        c_noise, c_jpeg, c_both, c_mild = self.mix
        if u < c_noise:
            return add_noise(rng, u8, rng.uniform(5, 50))
        if u < c_jpeg:
            return jpeg(u8, int(round(10 + 50 * rng.random() ** 1.5)))
        if u < c_both:
            return jpeg(add_noise(rng, u8, rng.uniform(2, 25)), rng.integers(20, 91))
        if u < c_mild:
            if rng.random() < 0.5:
                return add_noise(rng, u8, rng.uniform(0, 5))
            return jpeg(u8, rng.integers(60, 96))
        return u8

    def batch(self, n, p):
        xs, ys = [], []
        for _ in range(n):
            im = self.images[self.sampler.index()]
            y, x = self.sampler.crop(im, p, align=8)  # keep the JPEG 8x8 grid at the origin
            clean = augment(self.rng, im[y:y + p, x:x + p])[0]
            xs.append(self.degrade(clean))
            ys.append(clean)
        return to_tensor(xs), to_tensor(ys)


# ---------------------------------------------------------------- deblur
def motion_kernel(rng):
    length = rng.uniform(3, 13)
    angle = rng.uniform(0, math.pi)
    size = int(math.ceil(length)) | 1
    k = np.zeros((size, size), np.float32)
    c = size // 2
    for t in np.linspace(-0.5, 0.5, 4 * size):
        yy, xx = c + t * length * math.sin(angle), c + t * length * math.cos(angle)
        y0, x0 = int(math.floor(yy)), int(math.floor(xx))
        fy, fx = yy - y0, xx - x0
        for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (1, 0, fy * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 1, fy * fx)):
            if 0 <= y0 + dy < size and 0 <= x0 + dx < size:
                k[y0 + dy, x0 + dx] += wgt
    return k / k.sum()


def disk_kernel(rng):
    r = rng.uniform(1.0, 3.0)
    size = int(math.ceil(r)) * 2 + 1
    c = size // 2
    yy, xx = np.mgrid[:size, :size] - c
    # antialiased disk by supersampling
    ss = 4
    k = np.zeros((size, size), np.float32)
    for sy in range(ss):
        for sx in range(ss):
            d = np.hypot(yy + (sy + 0.5) / ss - 0.5, xx + (sx + 0.5) / ss - 0.5)
            k += (d <= r)
    return k / k.sum()


class DeblurData:
    """Defocus as Pillow GaussianBlur (radius 1.6..2.6 most often, 0.5..1.6 and 2.6..3.2
    less), motion (line kernels 3..13 px, any angle), disk defocus (radius 1..3), a few
    sharp inputs; light noise; 8-bit quantized."""

    MARGIN = 20
    # Gaussian radius ranges (cumulative share, low, high), then motion / disk / sharp
    MIXES = {"base": ([(0.60, 1.6, 2.6), (0.72, 0.5, 1.6), (0.80, 2.6, 3.2)], 0.92, 0.96)}

    def __init__(self, images, rng, mix="base"):
        self.images = images
        self.rng = rng
        self.sampler = Sampler(images, rng)
        self.gauss, self.c_motion, self.c_disk = self.MIXES[mix]

    def degrade(self, u8):
        rng = self.rng
        u = rng.random()
        if u < self.gauss[-1][0]:
            lo, hi = next((lo, hi) for c, lo, hi in self.gauss if u < c)
            r = rng.uniform(lo, hi)
            out = np.asarray(Image.fromarray(u8).filter(ImageFilter.GaussianBlur(r)))
        elif u < self.c_disk:
            k = motion_kernel(rng) if u < self.c_motion else disk_kernel(rng)
            f = u8.astype(np.float32)
            out = np.stack([ndimage.convolve(f[..., c], k, mode="reflect") for c in range(3)], -1)
            out = np.clip(np.round(out), 0, 255).astype(np.uint8)
        else:
            out = u8
        if rng.random() < 0.1:
            out = add_noise(rng, out, rng.uniform(0, 1.0))
        return out

    def batch(self, n, p):
        m = self.MARGIN
        xs, ys = [], []
        for _ in range(n):
            im = self.images[self.sampler.index()]
            y, x = self.sampler.crop(im, p + 2 * m)
            clean = augment(self.rng, im[y:y + p + 2 * m, x:x + p + 2 * m])[0]
            blurred = self.degrade(clean)
            xs.append(blurred[m:m + p, m:m + p])
            ys.append(clean[m:m + p, m:m + p])
        return to_tensor(xs), to_tensor(ys)


def lsq_deconv_filter(images, k, radius=2.0, per_image=6000, seed=99, lam=1e-4):
    """The k x k filter h that best maps a Pillow GaussianBlur(radius) photo b to the missing
    detail s - b (least squares over random pixels of the training photos, all channels,
    a small ridge term): a data-fitted Wiener filter, the deblur model's linear path init."""
    rng = np.random.default_rng(seed)
    n = k * k
    A = np.zeros((n, n))
    v = np.zeros(n)
    h = k // 2
    for im in images:
        b = np.asarray(Image.fromarray(im).filter(ImageFilter.GaussianBlur(radius)), np.float64) / 255.0
        s = im.astype(np.float64) / 255.0
        H, W = b.shape[:2]
        ys = rng.integers(h, H - h, per_image)
        xs = rng.integers(h, W - h, per_image)
        cs = rng.integers(0, 3, per_image)
        win = np.lib.stride_tricks.sliding_window_view(b, (k, k), axis=(0, 1))  # H-k+1, W-k+1, 3, k, k
        P = win[ys - h, xs - h, cs].reshape(per_image, n)
        t = (s - b)[ys, xs, cs]
        A += P.T @ P
        v += P.T @ t
    A += lam * np.trace(A) / n * np.eye(n)
    return np.linalg.solve(A, v).reshape(k, k)


# ---------------------------------------------------------------- colorization
def rgb_to_lab_tensor(rgb01):
    """N x 3 x H x W in [0,1] -> (L/100, ab/128) using skimage.color.rgb2lab (D65)."""
    from skimage.color import rgb2lab
    lab = rgb2lab(rgb01.permute(0, 2, 3, 1).numpy().astype(np.float64), channel_axis=-1)
    lab = torch.from_numpy(lab.astype(np.float32)).permute(0, 3, 1, 2)
    return lab[:, :1] / 100.0, lab[:, 1:] / 128.0


class ColorData:
    """Large random crops (40-100% of the short side) of the photos, resized to the patch
    size, so the network sees whole-scene context. The input L is what users supply and the
    pipeline computes: the Lab lightness of the crop's Pillow convert('L') (ITU-R 601 luma)
    gray; the target ab is skimage rgb2lab of the colour crop."""

    def __init__(self, images, rng):
        self.images = [np.asarray(Image.fromarray(im).resize(
            (im.shape[1] * 512 // max(im.shape[:2]), im.shape[0] * 512 // max(im.shape[:2])), Image.BICUBIC))
            for im in images]
        self.rng = rng
        self.sampler = Sampler(self.images, rng)

    def batch(self, n, p):
        rng = self.rng
        ys = []
        for _ in range(n):
            im = self.images[self.sampler.index()]
            h, w = im.shape[:2]
            c = int(min(h, w) * rng.uniform(0.4, 1.0))
            y, x = self.sampler.crop(im, c)
            crop = Image.fromarray(im[y:y + c, x:x + c]).resize((p, p), Image.BICUBIC)
            # left-right mirror only: rotated or upside-down crops would hide the strongest
            # colour cue these photos give (sky above, ground below); with the 90-degree
            # rotations of the other tasks the network learned a uniform sepia cast
            ys.append(augment(rng, np.asarray(crop), rotate=False)[0])
        rgb = to_tensor(ys)
        _, ab = rgb_to_lab_tensor(rgb)
        gray = [np.repeat(np.asarray(Image.fromarray(y).convert("L"))[..., None], 3, -1) for y in ys]
        L, _ = rgb_to_lab_tensor(to_tensor(gray))
        return L, ab


def colorfulness(rgb01):
    """Hasler & Suesstrunk colorfulness of N x 3 x H x W images in [0,1] (0..255 scale)."""
    r, g, b = rgb01[:, 0] * 255, rgb01[:, 1] * 255, rgb01[:, 2] * 255
    rg = r - g
    yb = 0.5 * (r + g) - b
    std = torch.sqrt(rg.var(dim=(1, 2), unbiased=False) + yb.var(dim=(1, 2), unbiased=False))
    mean = torch.sqrt(rg.mean(dim=(1, 2)) ** 2 + yb.mean(dim=(1, 2)) ** 2)
    return std + 0.3 * mean


def lab_to_rgb_tensor(L, ab):
    from skimage.color import lab2rgb
    lab = torch.cat([L * 100.0, ab * 128.0], 1).permute(0, 2, 3, 1).numpy().astype(np.float64)
    rgb = lab2rgb(lab, channel_axis=-1)
    return torch.from_numpy(rgb.astype(np.float32)).permute(0, 3, 1, 2)


def calibrate_color_gain(model, loader, batches=8, target=0.6):
    """Regression to the mean desaturates; pick the smallest output gain g >= 1 (folded into
    the last conv) that brings the mean colorfulness on training crops to `target` of the
    ground truth's, capped at 3."""
    Ls, abs_, preds = [], [], []
    with torch.no_grad():
        for _ in range(batches):
            L, ab = loader.batch(16, 128)
            Ls.append(L)
            abs_.append(ab)
            preds.append(model(L))
    L, ab, pred = torch.cat(Ls), torch.cat(abs_), torch.cat(preds)
    gt_c = colorfulness(lab_to_rgb_tensor(L, ab)).mean().item()
    best = 3.0
    for g in np.arange(1.0, 3.01, 0.05):
        c = colorfulness(lab_to_rgb_tensor(L, (pred * g).clamp(-1, 1))).mean().item()
        if c >= target * gt_c:
            best = float(g)
            break
    return best, gt_c


# ---------------------------------------------------------------- training loop
def log_mse_loss(pred, y, eps=(1.0 / 128.0) ** 2):
    """Mean over the batch of log(MSE of each sample + eps): the per-image PSNR that the
    evaluation averages, up to sign and scale. Plain MSE weights a patch with large errors far
    above one with small errors; per image in decibels both count alike (for colorization, colour
    painted into a nearly gray scene costs as much as a wrong hue in a vivid one, so the network
    learns to stay gray where it cannot tell). eps, 1/128 of the output scale squared (one Lab
    unit of ab for colorization, about two 8-bit levels for deblur), caps the reward for a patch
    that is already right."""
    mse = (pred - y).pow(2).flatten(1).mean(1)
    return torch.log(mse + eps).mean()


def make_loader(task, images, rng, mix="base"):
    if task == "sr2":
        return SRData(images, 2, rng)
    if task == "sr4":
        return SRData(images, 4, rng)
    if task == "restore":
        return RestoreData(images, rng, mix)
    if task == "deblur":
        return DeblurData(images, rng, mix)
    if task == "color":
        return ColorData(images, rng)
    raise ValueError(task)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--task", required=True, choices=models.TASKS)
    ap.add_argument("--iters", type=int, default=None)
    ap.add_argument("--out", default=os.path.join(HERE, "runs"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--start-phase", type=int, default=1,
                    help="continue a multi-phase task from runs/<task>.phase<N-1>.pt")
    args = ap.parse_args()

    phases = CONFIG[args.task] if isinstance(CONFIG[args.task], list) else [CONFIG[args.task]]
    phases = [dict(phases[0], **p) if k else dict(p) for k, p in enumerate(phases)]  # later phases inherit
    if args.iters:
        phases[0]["iters"] = args.iters
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    images = data.load_train(color=args.task == "color")
    torch.manual_seed(args.seed)
    model = models.build(args.task)
    if args.start_phase > 1:
        # continue from the checkpoint an earlier run wrote after phase start_phase - 1
        prev = os.path.join(args.out, f"{args.task}.phase{args.start_phase - 1}")
        model.load_state_dict(torch.load(prev + ".pt", map_location="cpu"))
        prev_meta = json.load(open(prev + ".json"))
        times, logs = prev_meta["phase_times_s"], prev_meta["log"]
        print(f"resuming after phase {args.start_phase - 1} from {prev}.pt", flush=True)
    else:
        times, logs = [], []
        if getattr(model, "linear_k", 0):
            hk = lsq_deconv_filter(images, model.linear_k)
            with torch.no_grad():
                for c in range(model.lin.weight.shape[0]):
                    model.lin.weight[c, c].copy_(torch.from_numpy(hk).float())
            print(f"linear path: {model.linear_k}x{model.linear_k} least-squares deconvolution filter, "
                  f"centre {hk[model.linear_k // 2, model.linear_k // 2]:.3f}", flush=True)
    model = model.to(memory_format=torch.channels_last)
    print(f"task {args.task}: {models.n_params(model)} params, phases {phases}", flush=True)

    run = 0.0
    for ph in range(args.start_phase, len(phases) + 1):
        cfg = phases[ph - 1]
        # each phase seeded on its own, so a resumed run equals an uninterrupted one
        torch.manual_seed(args.seed + 1000 * (ph - 1))
        rng = np.random.default_rng(args.seed + 1000 * (ph - 1))
        loader = make_loader(args.task, images, rng, cfg.get("mix", "base"))
        # a linear path's fitted filter moves slowly; the network learns around it
        slow = [p for n, p in model.named_parameters() if n.startswith("lin.")]
        groups = [{"params": [p for n, p in model.named_parameters() if not n.startswith("lin.")]}]
        if slow:
            groups.append({"params": slow, "lr": cfg["lr"] * 0.01})
        opt = torch.optim.Adam(groups, lr=cfg["lr"], betas=(0.9, 0.99))
        # optional exponential moving average of the weights; the averaged model is the result
        ema_decay = cfg.get("ema", 0.0)
        ema = copy.deepcopy(model) if ema_decay else None
        iters, warm = cfg["iters"], 100
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda i: min(1.0, (i + 1) / warm) * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(i, iters) / iters))))
        lossf = {"l2": F.mse_loss, "logmse": log_mse_loss}.get(cfg.get("loss"), F.l1_loss)
        print(f"phase {ph}/{len(phases)}: {cfg}", flush=True)
        model.train()
        t0 = time.time()
        t_data = 0.0
        mg = cfg.get("margin", 0)
        for it in range(iters):
            td = time.time()
            x, y = loader.batch(cfg["batch"], cfg["patch"] + 2 * mg)
            t_data += time.time() - td
            x = x.to(memory_format=torch.channels_last)
            pred = model(x)
            if mg:
                pred, y = pred[..., mg:-mg, mg:-mg], y[..., mg:-mg, mg:-mg]
            loss = lossf(pred, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            if ema is not None:
                with torch.no_grad():
                    for pe, pm in zip(ema.parameters(), model.parameters()):
                        pe.mul_(ema_decay).add_(pm, alpha=1 - ema_decay)
            run = loss.item() if it == 0 else 0.98 * run + 0.02 * loss.item()
            if (it + 1) % 100 == 0 or it == 0:
                el = time.time() - t0
                print(f"it {it + 1}/{iters} loss {run:.5f} lr {sched.get_last_lr()[0]:.2e} "
                      f"{el:.0f}s (data {t_data:.0f}s) eta {el / (it + 1) * (iters - it - 1):.0f}s", flush=True)
                logs.append((ph, it + 1, round(run, 6), round(el, 1)))
        if ema is not None:
            model.load_state_dict(ema.state_dict())
        times.append(round(time.time() - t0, 1))
        if ph < len(phases):
            base = os.path.join(args.out, f"{args.task}.phase{ph}")
            torch.save(model.state_dict(), base + ".pt")
            with open(base + ".json", "w") as f:
                json.dump({"phase_times_s": times, "log": logs}, f)
    train_time = sum(times)
    cfg = phases[0]
    log = logs

    meta = {"task": args.task, "params": models.n_params(model), "config": cfg, "phases": phases,
            "phase_times_s": times, "seed": args.seed,
            "threads": args.threads, "train_time_s": round(train_time, 1), "final_loss": round(run, 6),
            "log": log, "data": data.description(), "split_digest": data.split_digest(),
            "torch": torch.__version__, "command": "python train.py --task " + args.task + (
                f" --iters {args.iters}" if args.iters else "")}
    model.eval()
    gain_target = phases[-1].get("gain_target", 0.6)
    if args.task == "color" and gain_target:
        g, gt_c = calibrate_color_gain(model, loader, target=gain_target)
        with torch.no_grad():
            model.outc.weight.mul_(g)
            model.outc.bias.mul_(g)
        meta["color_gain"] = round(g, 3)
        print(f"colour output gain {g:.2f} (train GT colorfulness {gt_c:.1f})", flush=True)
    torch.save(model.state_dict(), os.path.join(args.out, args.task + ".pt"))
    with open(os.path.join(args.out, args.task + ".json"), "w") as f:
        json.dump(meta, f, indent=1)
    print(f"done in {train_time:.0f}s", flush=True)


if __name__ == "__main__":
    sys.exit(main())
