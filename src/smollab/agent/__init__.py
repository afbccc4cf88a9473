"""The research agent: plan, run, critique, write, with verified claims, budgets and resume."""

from smollab.agent.loop import Agent, AgentResult, Limits

__all__ = ["Agent", "AgentResult", "Limits"]
