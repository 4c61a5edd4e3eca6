"""The realtime orchestrator: `WS /v1/realtime` bridges a client to an OpenAI Realtime session
whose tools manage the agents (docs/realtime.md).

    endpoints.py  the WebSocket route (auth, then `RealtimeService.serve`)
    service.py    per-app: session cap, upstream connect through the resilience policy
    session.py    one session: its tasks, the client side, the upstream queues, its end
    inbound.py    upstream events -> client frames, tool calls, priced usage
    calls.py      tool calls through the orchestrator toolset; task-finished notices
    upstream.py   the upstream URL, handshake errors, JSON in and out
    protocol.py   client messages and close codes
    turns.py      when the next `response.create` may go out
    tasks.py      the hub subscription that reports finished tasks
    usage.py      response usage, priced per modality
    context.py    what sessions share (prompt, prices, accounting)
"""
