"""The domain layer. Routes (/v1), console state, MCP tools and jobs all call these functions.

Every service is ``async def fn(session, *, actor, ...)``: the caller owns the transaction, the
service owns the rules (validation, authorization, events).
"""
