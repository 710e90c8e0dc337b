from __future__ import annotations

import pytest

from flireo.webhooks.ssrf import UnsafeUrl, check_url


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://10.1.2.3/x",
        "http://192.168.1.10/x",
        "http://172.16.0.5/x",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/x",
        "http://[::ffff:127.0.0.1]/x",
        "http://0.0.0.0/x",
        "http://100.64.0.1/x",
    ],
)
async def test_private_targets_are_refused(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=False)


async def test_private_targets_allowed_when_operator_opts_in() -> None:
    await check_url("http://127.0.0.1:9/hook", allow_private=True)


async def test_public_literal_address_passes() -> None:
    await check_url("https://93.184.216.34/hook", allow_private=False)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "not a url", "http:///nohost", "http://h:99999/"]
)
async def test_malformed_urls_are_refused_even_when_private_allowed(url: str) -> None:
    with pytest.raises(UnsafeUrl):
        await check_url(url, allow_private=True)
