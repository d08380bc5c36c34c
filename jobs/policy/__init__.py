"""The pure decision core: facts, selection, prompt, verdict, guardrails, decision and plan.

No I/O, no clock, no SDK: every function here is a function of its arguments.
"""
