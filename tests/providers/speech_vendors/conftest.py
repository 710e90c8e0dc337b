from tests.fakes.deepgram import fake_deepgram
from tests.fakes.openai_audio import fake_openai_audio

__all__ = ["fake_deepgram", "fake_openai_audio"]
