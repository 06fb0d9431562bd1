"""SSD300-MobileNetV1 (``mb1-ssd``) as ``pytorch-ssd`` defines it, for tracing the Jetson SSD rows.

Why here: the jetson-inference SSD training rows (device_profiles/measurements/jetson_training.csv,
``ssd-mobilenet-v1``) train this detector, and fleetsim has no SSD family; it is traced as a user
model (``ssd_mobilenet_v1:SSD300MobileNetV1``, with ``scripts/`` on ``sys.path``) by
``scripts/fit_jetson_profiles.py``. Nothing in the simulator imports it.

Layout, layer for layer, from ``qfgaohao/pytorch-ssd`` (which ``dusty-nv/pytorch-ssd`` forks):
``vision/nn/mobilenet.py`` (MobileNetV1: 3x3/2 conv 3→32 + BN + ReLU, then 13 depthwise-separable
blocks = depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU, no biases) and
``vision/ssd/mobilenetv1_ssd.py`` (``base_net = MobileNetV1(1001).model``, i.e. without its
classifier; headers on the outputs of base layers 0-11 (19x19x512) and 12-13 (10x10x1024); four
extras (1x1 conv + ReLU, 3x3/2 conv + ReLU: 5x5, 3x3, 2x2, 1x1); per feature map a 3x3 class header
with 6 x classes outputs and a 3x3 box header with 6 x 4, with biases). ``vision/ssd/ssd.py``'s
``forward``: each header output permuted to NHWC, made contiguous, viewed as (B, -1, classes|4),
concatenated over the six maps. Training returns (confidences, locations); here both are flattened
and concatenated into one tensor so the tracer's loss (a sum) reaches both — the MultiboxLoss's own
ops (hard-negative mining over 3,000 priors x 9 classes) are left out: boolean-mask indexing has no
meta-device shape, and they touch ~0.1 MB per sample.

:class:`MobileNetV1` (the classifier, average pool + linear) is here only to check the backbone
against the paper's count (Howard et al. 2017, arXiv:1704.04861: 1.0 MobileNet-224 has 4.2 M
parameters and 569 M mult-adds).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

# (input channels, output channels, stride) of MobileNetV1's 13 depthwise-separable blocks
DW_BLOCKS = ((32, 64, 1), (64, 128, 2), (128, 128, 1), (128, 256, 2), (256, 256, 1), (256, 512, 2),
             (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 512, 1), (512, 1024, 2),
             (1024, 1024, 1))
SOURCE_LAYERS = (12, 14)  # base layers before the first and second header
EXTRAS = ((1024, 256, 512), (512, 128, 256), (256, 128, 256), (256, 128, 256))  # in, 1x1 out, 3x3/2 out
HEADER_INPUTS = (512, 1024, 512, 256, 256, 256)
BOXES_PER_CELL = 6


def _conv_bn(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
    )


def mobilenet_v1_layers() -> nn.Sequential:
    """``MobileNetV1(...).model``: the 14 layers SSD uses as its base net."""
    return nn.Sequential(_conv_bn(3, 32, 2), *(_conv_dw(i, o, s) for i, o, s in DW_BLOCKS))


class MobileNetV1(nn.Module):
    """The ImageNet classifier (for the parameter / mult-add check only)."""

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        self.model = mobilenet_v1_layers()
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(self.model(x), 1), 1))


class SSD300MobileNetV1(nn.Module):
    """pytorch-ssd's ``create_mobilenetv1_ssd(num_classes)`` in training mode (``is_test=False``)."""

    def __init__(self, num_classes: int = 9) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.base_net = mobilenet_v1_layers()
        self.extras = nn.ModuleList(
            nn.Sequential(nn.Conv2d(cin, mid, 1), nn.ReLU(), nn.Conv2d(mid, cout, 3, stride=2, padding=1), nn.ReLU())
            for cin, mid, cout in EXTRAS)
        self.classification_headers = nn.ModuleList(
            nn.Conv2d(c, BOXES_PER_CELL * self.num_classes, 3, padding=1) for c in HEADER_INPUTS)
        self.regression_headers = nn.ModuleList(nn.Conv2d(c, BOXES_PER_CELL * 4, 3, padding=1) for c in HEADER_INPUTS)

    def _header(self, i: int, x: Tensor) -> tuple[Tensor, Tensor]:
        conf = self.classification_headers[i](x).permute(0, 2, 3, 1).contiguous()
        loc = self.regression_headers[i](x).permute(0, 2, 3, 1).contiguous()
        return conf.view(conf.size(0), -1, self.num_classes), loc.view(loc.size(0), -1, 4)

    def forward(self, x: Tensor) -> Tensor:
        outputs = []
        start = 0
        for end in SOURCE_LAYERS:
            for layer in self.base_net[start:end]:
                x = layer(x)
            start = end
            outputs.append(self._header(len(outputs), x))
        for layer in self.extras:
            x = layer(x)
            outputs.append(self._header(len(outputs), x))
        confidences = torch.cat([c for c, _ in outputs], 1)
        locations = torch.cat([loc for _, loc in outputs], 1)
        return torch.cat((confidences.flatten(1), locations.flatten(1)), 1)


def priors(input_side: int = 300) -> int:
    """Anchor boxes of the six feature maps (19, 10, 5, 3, 2, 1 at 300x300): 6 per cell."""
    with torch.device("meta"):
        out = SSD300MobileNetV1(1)(torch.empty(1, 3, input_side, input_side))
    return int(out.shape[1]) // 5
