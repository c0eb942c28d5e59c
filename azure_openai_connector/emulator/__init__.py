"""A local Azure OpenAI / OpenAI API emulator with scriptable faults, for tests, demos and benchmarks.

It deliberately imports nothing else from `azure_openai_connector`: it is an independent reading of
the API, so a misreading cannot hide in both the client and its test double.
"""

from .cli import main
from .faults import Fault
from .recording import Headers, RecordedRequest
from .server import Emulator

__all__ = ["Emulator", "Fault", "Headers", "RecordedRequest", "main"]
