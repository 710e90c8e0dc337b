from tests.fakes.cartesia import fake_cartesia
from tests.fakes.deepgram import fake_deepgram
from tests.fakes.elevenlabs import fake_elevenlabs
from tests.fakes.openai_audio import fake_openai_audio

__all__ = ["fake_cartesia", "fake_deepgram", "fake_elevenlabs", "fake_openai_audio"]
