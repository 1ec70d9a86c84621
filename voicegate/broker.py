"""kombu's filesystem transport (the embedded broker of `make run`) with messages that appear whole or not at all.

kombu 5.7 opens a message file in the queue folder and only then writes it, so a worker listing the folder in
between moves it away and reads it empty; decoding fails outside any handler ("Unrecoverable error", kombu
issue #1551), the worker exits and the message is lost. Here a message is written under a name the consumer
skips (it takes only files named ``<stamp>_<uuid>.<queue>.msg``) and renamed into place, which is atomic.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    def _put(self, queue: str, payload: dict, **kwargs: object) -> None:
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        partial = os.path.join(self.data_folder_out, f"partial-{uuid.uuid4()}")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            if os.path.exists(partial):
                os.remove(partial)
            raise ChannelError(f"cannot add a message to {self.data_folder_out!r}") from exc


class Transport(filesystem.Transport):
    Channel = Channel
