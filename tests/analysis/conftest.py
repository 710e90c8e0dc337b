from tests.fakes.openai_chat import fake_openai  # noqa: F401 - pytest fixture
