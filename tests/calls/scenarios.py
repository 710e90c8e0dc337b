"""sipp scenarios for whole-call tests, written per test (they name its files)."""

from __future__ import annotations

from pathlib import Path

_HEAD = """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="{name}">
  <send>
    <![CDATA[

      INVITE sip:[service]@[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:+31612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      User-Agent: sipp
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=user1 53655765 2353687637 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000
      a=fmtp:101 0-16

    ]]>
  </send>
  <recv response="100" optional="true"/>
  <recv response="180"/>
  <recv response="200" rrs="true"/>
  <send>
    <![CDATA[

      ACK [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:+31612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
"""

_BYE = """
  <send>
    <![CDATA[

      BYE [next_url] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
      From: "Caller" <sip:+31612345678@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
      To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
      Call-ID: [call_id]
      CSeq: 2 BYE
      Contact: <sip:sipp@[local_ip]:[local_port];transport=[transport]>
      Max-Forwards: 70
      Content-Length: 0

    ]]>
  </send>
  <recv response="200" crlf="true"/>
</scenario>
"""

_WAIT_FOR_BYE = """
  <recv request="BYE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
</scenario>
"""


def caller_streams(path: Path, wav: Path, *, delay_ms: int, hold_ms: int) -> Path:
    """Call, wait ``delay_ms``, stream ``wav`` as RTP (PCMU), stay ``hold_ms``, BYE."""
    body = (
        _HEAD.format(name="caller speaks")
        + f'  <pause milliseconds="{delay_ms}"/>\n'
        + f'  <nop><action><exec rtp_stream="{wav},1,0"/></action></nop>\n'
        + f'  <pause milliseconds="{hold_ms}"/>\n'
        + _BYE
    )
    path.write_text(body)
    return path


def caller_waits_for_bye(path: Path, *, dtmf_pcap: str | None = None) -> Path:
    """Call, optionally play an RFC 4733 pcap, then wait for our BYE."""
    middle = ""
    if dtmf_pcap:
        middle = f'  <nop><action><exec play_pcap_audio="{dtmf_pcap}"/></action></nop>\n'
    path.write_text(_HEAD.format(name="caller waits") + middle + _WAIT_FOR_BYE)
    return path


def caller_hangs_up(path: Path, *, hold_ms: int) -> Path:
    """Call, stay ``hold_ms``, BYE."""
    path.write_text(
        _HEAD.format(name="caller hangs up") + f'  <pause milliseconds="{hold_ms}"/>\n' + _BYE
    )
    return path


def caller_refuses_refer(path: Path, *, hold_ms: int) -> Path:
    """Call; answer our REFER with 501 (no transfer support); stay ``hold_ms``; BYE."""
    refuse = """
  <recv request="REFER"/>
  <send>
    <![CDATA[

      SIP/2.0 501 Not Implemented
      [last_Via:]
      [last_From:]
      [last_To:]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
"""
    path.write_text(
        _HEAD.format(name="caller without REFER")
        + refuse
        + f'  <pause milliseconds="{hold_ms}"/>\n'
        + _BYE
    )
    return path


def callee_answers(path: Path) -> Path:
    """A phone reached through the trunk: answers, then waits for our BYE."""
    path.write_text(
        """<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="callee answers">
  <recv request="INVITE"/>
  <send>
    <![CDATA[

      SIP/2.0 200 OK
      [last_Via:]
      [last_From:]
      [last_To:];tag=[pid]SIPpTag01[call_number]
      [last_Call-ID:]
      [last_CSeq:]
      Contact: <sip:callee@[local_ip]:[local_port];transport=[transport]>
      Content-Type: application/sdp
      Content-Length: [len]

      v=0
      o=callee 1 1 IN IP[local_ip_type] [local_ip]
      s=-
      c=IN IP[media_ip_type] [media_ip]
      t=0 0
      m=audio [media_port] RTP/AVP 0 101
      a=rtpmap:0 PCMU/8000
      a=rtpmap:101 telephone-event/8000

    ]]>
  </send>
  <recv request="ACK"/>
"""
        + _WAIT_FOR_BYE.split("\n", 1)[1]
    )
    return path
