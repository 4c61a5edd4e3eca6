"""`claude_code` agents: each task is one Claude Code turn, run by the Claude Code CLI through
the Claude Agent SDK (the optional `claude-code` extra) in the agent's workspace.

    availability  is the extra installed and the CLI runnable? (422 / check-config)
    policy        the operator's permissions: tool set, workspace paths (pure, no SDK)
    processes     the launcher, the PIDs the service started, reaping leftovers
    translate     SDK messages and hook callbacks → the service's events
    outcome       the run's result message → the task's result, error, usage and cost
    session       one run of the CLI (imports the SDK)
    runner        the `AgentKindRunner`: breaker gate, session continuity, cancel and deadline
"""
