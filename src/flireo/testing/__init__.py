"""``flireo test``: simulated callers over real SIP against an agent, with expectations
checked on what the agent said and did (the call record), a table and JUnit XML."""
