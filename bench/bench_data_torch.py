#!/usr/bin/python3
"""torch side of bench/bench_data.cc: a DataLoader epoch over Fashion-MNIST (60000 images) with
ToTensor-style scaling, RandomCrop(28, padding=2) and RandomHorizontalFlip, batch 128, images/s
for num_workers 0, 1, 2. Run: /usr/bin/python3 bench/bench_data_torch.py"""
import gzip
import time

import numpy as np
import torch
import torchvision.transforms as T

torch.set_num_threads(1)
d = "/usr/share/datasets/fashion-mnist/"
x = np.frombuffer(gzip.open(d + "train-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
y = np.frombuffer(gzip.open(d + "train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8).astype(np.int64)
images, labels = torch.from_numpy(x.copy()), torch.from_numpy(y.copy())
aug = T.Compose([T.RandomCrop(28, padding=2), T.RandomHorizontalFlip()])


class DS(torch.utils.data.Dataset):
    def __len__(self):
        return len(labels)

    def __getitem__(self, i):
        return aug(images[i].float() / 255), labels[i]


if __name__ == "__main__":
    for workers in (0, 1, 2):
        dl = torch.utils.data.DataLoader(DS(), batch_size=128, shuffle=True, num_workers=workers,
                                         persistent_workers=workers > 0)
        for epoch in range(2):  # the first epoch warms the workers up
            t = time.perf_counter()
            n = sum(len(b[1]) for b in dl)
            dt = time.perf_counter() - t
        print(f"torch DataLoader workers={workers}: {n / dt:,.0f} images/s ({dt:.2f} s/epoch)")
