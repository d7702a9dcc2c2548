"""Which frames are the program's own: the first one above the hooks that is neither
torch's nor enslint's is where a member was called."""

from __future__ import annotations

import os
from types import FrameType

import torch

_TORCH_DIR = os.path.dirname(torch.__file__) + os.sep
_ENSLINT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def user_frame(start: FrameType | None) -> FrameType | None:
    """The first frame of the program's own code above the hooks."""
    frame = start
    while frame is not None:
        name = frame.f_code.co_filename
        if not (name.startswith(_TORCH_DIR) or name.startswith(_ENSLINT_DIR)):
            return frame
        frame = frame.f_back
    return None
