"""RTP media: packets, jitter buffer, RFC 4733 DTMF, paced sessions, and the
:class:`~flireo.engine.transport.AudioTransport` of a SIP call."""
