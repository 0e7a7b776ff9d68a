"""Runs in the Paddle side environment (tools/venvs.paddle_python): a small network built and saved by
PaddlePaddle 3 itself (`paddle.jit.save`, which writes a PIR program as .json beside its .pdiparams), and
Paddle's own output for a seeded input.

    python paddle_side.py OUT_DIR      # OUT_DIR/net.json, net.pdiparams, net.io.npz (x, y), prints paddle's version
"""
import sys
from pathlib import Path

import numpy as np
import paddle


class Net(paddle.nn.Layer):
    """conv 3x3 -> batch norm (its statistics set, not the defaults) -> relu -> global mean -> linear -> softmax"""

    def __init__(self):
        super().__init__()
        self.conv = paddle.nn.Conv2D(3, 8, 3, padding=1)
        self.bn = paddle.nn.BatchNorm2D(8)
        self.fc = paddle.nn.Linear(8, 5)

    def forward(self, image):
        y = paddle.nn.functional.relu(self.bn(self.conv(image)))
        return paddle.nn.functional.softmax(self.fc(paddle.mean(y, axis=[2, 3])), axis=-1)


def main(out_dir: str) -> None:
    paddle.seed(0)
    rng = np.random.default_rng(0)
    net = Net()
    net.bn._mean.set_value(rng.standard_normal(8).astype("float32") * 0.1)
    net.bn._variance.set_value(rng.uniform(0.5, 2.0, 8).astype("float32"))
    net.eval()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    spec = [paddle.static.InputSpec([1, 3, 32, 32], "float32", name="image")]
    paddle.jit.save(net, str(out / "net"), input_spec=spec)
    x = rng.standard_normal((1, 3, 32, 32)).astype("float32")
    np.savez(out / "net.io.npz", x=x, y=net(paddle.to_tensor(x)).numpy())
    print(paddle.__version__)


if __name__ == "__main__":
    main(sys.argv[1])
