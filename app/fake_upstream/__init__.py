"""A scriptable fake of the OpenAI, Anthropic and Gemini HTTP APIs, with fault injection.

app.py        create_fake_app(): provider routes + control API
control.py    /_fake/{health,script,requests,reset}
script.py     Step (what to answer) and ScriptBook (per-model FIFO queues)
serve.py      one provider request: record, take a step, wait, answer or misbehave
reply.py      step + prompt -> protocol-neutral Reply (echo/done defaults, word usage)
openai.py, anthropic.py, gemini.py   the three wire formats (dialect.py: their shape)
faults.py     latency, slow drip, malformed bodies, connections cut mid-body
records.py    the request log, credentials redacted
client.py     FakeUpstreamClient for tests and benchmarks
"""
