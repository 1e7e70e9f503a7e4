# nn_torch.py: PyTorch side of the nn throughput benchmark: the same models as
# src/nn/models.c (cnn, resnet8, resnet20, mlp), one thread, forward + backward + plain
# SGD update on a fixed random batch. One measurement per launch, printed as
#   train MODEL c=C h=H batch=B imgs_per_s=X
# Usage: OPENBLAS_NUM_THREADS=1 /usr/bin/python3 bench/nn_torch.py MODEL C H W BATCH STEPS
import sys
import time

import torch
import torch.nn as nn


def cnn(c, h, w, ncls):
    def out(s):  # conv3 (no padding) then maxpool 2, twice
        return ((s - 2) // 2 - 2) // 2
    return nn.Sequential(
        nn.Conv2d(c, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * out(h) * out(w), 128), nn.ReLU(),
        nn.Linear(128, ncls))


def mlp(c, h, w, ncls):
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 256), nn.ReLU(),
                         nn.Linear(256, ncls))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.downsample is None else self.downsample(x)
        return torch.relu(y + s)


class ResNet(nn.Module):
    def __init__(self, c, blocks, ncls):
        super().__init__()
        self.conv1 = nn.Conv2d(c, 16, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        layers, cin = [], 16
        for s in range(3):
            ch = 16 << s
            for b in range(blocks):
                layers.append(Block(cin, ch, 2 if s > 0 and b == 0 else 1))
                cin = ch
        self.layers = nn.Sequential(*layers)
        self.fc = nn.Linear(64, ncls)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = self.layers(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def build(name, c, h, w, ncls):
    if name == "cnn":
        return cnn(c, h, w, ncls)
    if name == "mlp":
        return mlp(c, h, w, ncls)
    if name == "resnet8":
        return ResNet(c, 1, ncls)
    if name == "resnet20":
        return ResNet(c, 3, ncls)
    raise SystemExit("nn_torch.py: unknown model " + name)


def main():
    name, c, h, w, batch, steps = sys.argv[1], *map(int, sys.argv[2:7])
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build(name, c, h, w, 10)
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.randn(batch, c, h, w)
    y = torch.arange(batch) % 10
    lossf = nn.CrossEntropyLoss()
    for s in range(-3, steps):  # 3 warm-up steps
        if s == 0:
            t0 = time.perf_counter()
        opt.zero_grad()
        loss = lossf(model(x), y)
        loss.backward()
        opt.step()
    dt = time.perf_counter() - t0
    print("train %s c=%d h=%d batch=%d imgs_per_s=%.1f loss=%.4f"
          % (name, c, h, batch, steps * batch / dt, loss.item()))


if __name__ == "__main__":
    main()
