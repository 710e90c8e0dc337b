from tests.fakes.anthropic import fake_anthropic
from tests.fakes.openai_chat import fake_openai

__all__ = ["fake_anthropic", "fake_openai"]
