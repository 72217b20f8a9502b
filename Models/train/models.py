"""The four enhancement networks (five files: SR x2 and x4 share one design).

The exported graphs use only Conv, Relu, Add, DepthToSpace and, in the deblur model's
linear path, Pad (reflect), Concat, Sigmoid and Mul (checked by export.py). No normalization
layers, no Resize.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class ResBlock(nn.Module):
    def __init__(self, ch):
        super().__init__()
        self.c1 = nn.Conv2d(ch, ch, 3, padding=1)
        self.c2 = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x):
        return x + self.c2(F.relu(self.c1(x)))


def bicubic_subpixel_weights(scale, k=5):
    """Weights of a Conv(3 -> 3*scale^2, k x k) that, followed by DepthToSpace(scale) in CRD
    order, reproduces torch's bicubic upsampling (align_corners=False) away from borders."""
    n = 2 * k + 1
    c = n // 2
    imp = torch.zeros(1, 1, n, n)
    imp[0, 0, c, c] = 1.0
    up = F.interpolate(imp, scale_factor=scale, mode="bicubic", align_corners=False)[0, 0]
    w = torch.zeros(3 * scale * scale, 3, k, k)
    h = k // 2
    for i in range(scale):
        for j in range(scale):
            for dy in range(k):
                for dx in range(k):
                    # HR(s*y+i, s*x+j) += w[.., dy, dx] * LR(y+dy-h, x+dx-h); impulse at LR (c, c)
                    y = c - dy + h
                    x = c - dx + h
                    val = up[scale * y + i, scale * x + j]
                    for ch in range(3):
                        w[ch * scale * scale + i * scale + j, ch, dy, dx] = val
    return w


class SuperRes(nn.Module):
    """Sub-pixel residual network: features at low resolution, a learnable linear
    upsampling path (initialised to bicubic), one DepthToSpace at the end.
    Accepts any H and W; output is (scale*H, scale*W)."""

    def __init__(self, scale, feats=32, blocks=3):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, feats, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(feats) for _ in range(blocks)])
        self.fuse = nn.Conv2d(feats, feats, 3, padding=1)
        self.tail = nn.Conv2d(feats, 3 * scale * scale, 3, padding=1)
        self.linear = nn.Conv2d(3, 3 * scale * scale, 5, padding=2)
        self.shuffle = nn.PixelShuffle(scale)
        with torch.no_grad():
            self.linear.weight.copy_(bicubic_subpixel_weights(scale, 5))
            self.linear.bias.zero_()
            self.tail.weight.mul_(0.1)
            self.tail.bias.zero_()

    def forward(self, x):
        f = F.relu(self.head(x))
        f = F.relu(self.fuse(self.body(f))) + f
        return self.shuffle(self.tail(f) + self.linear(x))


class UNet(nn.Module):
    """Small U-Net: stride-2 Conv down, Conv + DepthToSpace up, skip connections by Add.
    With `levels` levels H and W must be multiples of 2**(levels-1).
    residual=True adds the input (same channel count) to the output."""

    def __init__(self, cin, cout, chs, enc_blocks, dec_blocks, residual, linear_k=0, global_ctx=False):
        super().__init__()
        assert len(chs) == len(enc_blocks) == len(dec_blocks) + 1
        self.residual = residual
        # with a linear path, the network also sees the filtered image (input channels doubled)
        self.inc = nn.Conv2d(cin * 2 if linear_k else cin, chs[0], 3, padding=1)
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        for i, ch in enumerate(chs):
            if i > 0:
                self.down.append(nn.Conv2d(chs[i - 1], ch, 3, stride=2, padding=1))
            self.enc.append(nn.Sequential(*[ResBlock(ch) for _ in range(enc_blocks[i])]))
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for i in range(len(chs) - 1):
            self.up.append(nn.Sequential(nn.Conv2d(chs[i + 1], chs[i] * 4, 3, padding=1), nn.PixelShuffle(2)))
            self.dec.append(nn.Sequential(*[ResBlock(chs[i]) for _ in range(dec_blocks[i])]))
        self.outc = nn.Conv2d(chs[0], cout, 3, padding=1)
        self.multiple = 2 ** (len(chs) - 1)
        # optional gated linear path: a k x k filter on the reflect-padded input (initialised
        # by train.py to a least-squares deconvolution), weighted per pixel by a sigmoid gate
        # computed from the last decoder features; the U-Net learns what the filter cannot
        self.linear_k = linear_k
        if linear_k:
            self.lin = nn.Conv2d(cin, cout, linear_k, padding=0, bias=False)
            self.gate = nn.Conv2d(chs[0], 1, 3, padding=1)
        with torch.no_grad():
            self.outc.weight.mul_(0.1)
            self.outc.bias.zero_()
            if linear_k:
                self.lin.weight.zero_()
                self.gate.weight.zero_()
                self.gate.bias.fill_(2.0)
        # optional global context: the mean of the deepest features over the whole input, through
        # two 1x1 convolutions, added to every position before the last encoder stage (the
        # scene as a whole, e.g. day or night, sets colours a local view cannot)
        self.global_ctx = global_ctx
        if global_ctx:
            self.ctx1 = nn.Conv2d(chs[-1], chs[-1], 1)
            self.ctx2 = nn.Conv2d(chs[-1], chs[-1], 1)
            with torch.no_grad():
                self.ctx2.weight.mul_(0.1)
                self.ctx2.bias.zero_()

    def forward(self, x):
        if self.linear_k:
            p = self.linear_k // 2
            d = self.lin(F.pad(x, (p, p, p, p), mode="reflect"))
            f = F.relu(self.inc(torch.cat([x, x + d], 1)))
        else:
            f = F.relu(self.inc(x))
        skips = []
        for i, enc in enumerate(self.enc):
            if i > 0:
                f = F.relu(self.down[i - 1](f))
            if self.global_ctx and i == len(self.enc) - 1:
                f = f + self.ctx2(F.relu(self.ctx1(f.mean(dim=(2, 3), keepdim=True))))
            f = enc(f)
            skips.append(f)
        for i in reversed(range(len(self.dec))):
            f = F.relu(self.up[i](f)) + skips[i]
            f = self.dec[i](f)
        y = self.outc(f)
        if self.linear_k:
            y = y + torch.sigmoid(self.gate(f)) * d
        return x + y if self.residual else y


def build(task):
    if task == "sr2":
        return SuperRes(2, feats=32, blocks=4)
    if task == "sr4":
        return SuperRes(4, feats=32, blocks=4)
    if task == "restore":
        return UNet(3, 3, chs=[24, 48, 96], enc_blocks=[0, 1, 3], dec_blocks=[1, 1], residual=True)
    if task == "deblur":
        return UNet(3, 3, chs=[24, 48, 96], enc_blocks=[0, 1, 3], dec_blocks=[1, 1], residual=True,
                    linear_k=15)
    if task == "color":
        return UNet(1, 2, chs=[16, 32, 64, 96, 128], enc_blocks=[0, 1, 1, 2, 2],
                    dec_blocks=[0, 1, 1, 1], residual=False, global_ctx=True)
    raise ValueError(task)


TASKS = ["sr2", "sr4", "restore", "deblur", "color"]
ONNX_NAME = {"sr2": "sr_x2.onnx", "sr4": "sr_x4.onnx", "restore": "restore.onnx",
             "deblur": "deblur.onnx", "color": "colorize.onnx"}
# H and W of the input must be multiples of this (the pipeline pads, e.g. by reflection)
SIZE_MULTIPLE = {"sr2": 1, "sr4": 1, "restore": 4, "deblur": 4, "color": 16}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


if __name__ == "__main__":
    for t in TASKS:
        m = build(t)
        print(t, n_params(m))
    # bicubic path check
    m = SuperRes(2)
    x = torch.rand(1, 3, 32, 32)
    ref = F.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
    got = m.shuffle(m.linear(x))
    print("bicubic path max diff (interior):", (ref - got)[..., 8:-8, 8:-8].abs().max().item())
