from tests.fakes.xai_realtime import fake_xai_realtime

__all__ = ["fake_xai_realtime"]
