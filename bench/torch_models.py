"""torch.nn models that mirror minigrad's example models member for member, so that each side loads
the other's state_dict (bench/torch_examples.py, tests/torch_interop.py)."""
import torch


class DigitsCnn(torch.nn.Module):
    """examples/common/digits_cnn_model.hpp's model, with its member names."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(1, 16, 3, padding=1)
        self.bn1 = torch.nn.BatchNorm2d(16)
        self.conv2 = torch.nn.Conv2d(16, 32, 3, padding=1)
        self.bn2 = torch.nn.BatchNorm2d(32)
        self.drop = torch.nn.Dropout(0.1)
        self.fc = torch.nn.Linear(128, 10)

    def forward(self, x):
        h = x.reshape(-1, 1, 8, 8)
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn1(self.conv1(h))), 2)
        h = torch.nn.functional.max_pool2d(torch.relu(self.bn2(self.conv2(h))), 2)
        return self.fc(self.drop(torch.flatten(h, 1)))
