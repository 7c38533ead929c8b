#!/usr/bin/env python3
"""An independent implementation of ShardCore's epoch orders (Sources/ShardCore/Samplers.swift),
in plain Python, that prints the golden sequences Tests/ShardCoreTests/SamplerTests.swift pins:
the two must agree, so the order is defined by the documented algorithm, not by one program.

    tools/sampler-golden.py
"""
MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, bound):
        # Lemire: the high 64 bits of next() * bound, rejecting the biased low range.
        m = self.next() * bound
        low = m & MASK
        if low < bound:
            t = ((1 << 64) - bound) % bound
            while low < t:
                m = self.next() * bound
                low = m & MASK
        return m >> 64


def generator(seed, epoch):
    return SplitMix64(SplitMix64(seed ^ ((epoch * 0xD1B54A32D192ED03) & MASK)).next())


def shuffle(items, rng):
    for i in range(len(items) - 1, 0, -1):
        j = rng.below(i + 1)
        items[i], items[j] = items[j], items[i]


def shuffled(count, seed, epoch):
    items = list(range(count))
    shuffle(items, generator(seed, epoch))
    return items


def locality(count, block, window, seed, epoch):
    items = list(range(count))
    if count <= 1:
        return items
    rng = generator(seed, epoch)
    blocks = (count - 1) // block + 1
    order = list(range(blocks))
    shuffle(order, rng)
    result = []
    for start in range(0, blocks, window):
        w = []
        for b in order[start:start + window]:
            w += items[b * block:min(b * block + block, count)]
        shuffle(w, rng)
        result += w
    return result


if __name__ == "__main__":
    print("shuffle(10, seed 0, epoch 0):", shuffled(10, 0, 0))
    print("shuffle(10, seed 0, epoch 1):", shuffled(10, 0, 1))
    print("shuffle(1000, seed 42, epoch 3)[:12]:", shuffled(1000, 42, 3)[:12])
    print("shuffle(1000, seed 42, epoch 3)[-3:]:", shuffled(1000, 42, 3)[-3:])
    print("locality(20, blocks of 4, windows of 2, seed 7, epoch 1):", locality(20, 4, 2, 7, 1))
    print("shuffle(10, seed 7, epoch 0):", shuffled(10, 7, 0))
