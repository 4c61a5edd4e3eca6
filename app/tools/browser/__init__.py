"""The browser agent's tools: a real headless Chromium driven through Playwright.

guard.py      which URLs a page may reach (the agent's allowed origins), pure logic
gate.py       a per-session SOCKS5 gate: every connection Chromium opens, checked again
routing.py    the guard applied to a Playwright context (requests, popups, downloads)
actions.py    the computer-use actions: arguments, the 0-999 grid, key names
session.py    one task's page: run an action, take a screenshot
launcher.py   the browsers open at once (a bulkhead), launched and closed per task
"""
